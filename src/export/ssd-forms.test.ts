/**
 * The SSD forms (`--ssd function|contrib|scan`) compute the same model as `chunked`:
 *  - against the HF fixtures in test/fixtures: logits of every case and final states within 1e-4;
 *  - against the chunked form on random models (G > 1, L not a multiple of Q, batch 2, prefill in
 *    two calls so the second starts from a non-zero state): logits and states within 1e-5;
 *  - the emitted graph holds the form's ops (one SSDChunkScan per layer, the com.microsoft ops, a Scan).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GraphIR, ModelIR, NodeIR } from '../graph/ir.js';
import { saveModel } from '../graph/serialize.js';
import { maxDiff, rand } from '../../test/helpers/ort.js';
import { Runner, type States } from '../../test/helpers/model-runner.js';
import { makeConfig } from './config.js';
import type { Mamba2Config } from '../package/config.js';
import { availableForms } from './forms.js';
import { exportModel } from './index.js';
import { ioTable } from '../package/io.js';
import { buildMamba2Model } from './lm.js';
import type { SsdForm } from '../package/meta.js';
import { randomWeights } from './random-weights.js';

const OTHER_FORMS: SsdForm[] = ['function', 'contrib', 'scan'];
const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures');

const tmp = mkdtempSync(join(tmpdir(), 'm2o-forms-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every node of the model, subgraphs and function bodies included. */
function allNodes(ir: ModelIR): NodeIR[] {
  const out: NodeIR[] = [];
  const walk = (g: GraphIR): void => {
    for (const n of g.nodes) {
      out.push(n);
      for (const a of Object.values(n.attributes)) if (a.type === 'graph') walk(a.value);
    }
  };
  walk(ir.graph);
  return out;
}

it('every form is registered', () => {
  expect(availableForms().sort()).toEqual(['chunked', 'contrib', 'function', 'scan']);
});

describe('forms against the HF fixtures (logits and final states ≤ 1e-4)', () => {
  interface Reference {
    cases: { input_ids: number[][]; logits: number[][][] }[];
    final_states?: { case_index: number; conv_state: number[][][][]; ssm_state: number[][][][][] };
  }
  const names = existsSync(FIXTURES)
    ? readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'reference.json')) && existsSync(join(FIXTURES, n, 'hf')))
    : [];
  if (names.length === 0) it.skip(`no fixtures at ${FIXTURES} (skipped)`, () => {});
  for (const name of names) {
    for (const form of OTHER_FORMS) {
      it(`${name} --ssd ${form}`, async () => {
        const ref = JSON.parse(readFileSync(join(FIXTURES, name, 'reference.json'), 'utf8')) as Reference;
        const out = join(tmp, `fx-${name}-${form}`);
        const res = await exportModel({ checkpointDir: join(FIXTURES, name, 'hf') }, { outDir: out, ssd: form });
        expect(res.meta.ssdForm).toBe(form);
        const run = await Runner.open(out);
        try {
          for (const cs of ref.cases) {
            const got = await run.forward(cs.input_ids);
            const d = maxDiff(got.logits, cs.logits.flat(2));
            expect(d.max, `${cs.input_ids.length}x${cs.input_ids[0]!.length}: max|Δ| at ${d.at}`).toBeLessThanOrEqual(1e-4);
          }
          const fs = ref.final_states;
          if (fs) {
            const got = await run.forward(ref.cases[fs.case_index]!.input_ids);
            expect(maxDiff(got.states['past_conv.0']!.data as Float32Array, fs.conv_state[0]!.flat(2)).max).toBeLessThanOrEqual(1e-4);
            expect(maxDiff(got.states['past_ssm.0']!.data as Float32Array, fs.ssm_state[0]!.flat(3)).max).toBeLessThanOrEqual(1e-4);
          }
        } finally {
          await run.release();
        }
      });
    }
  }
});

/** A session on the model built for `form`, fed like the runtime does (states by the I/O table). */
class Session {
  private constructor(
    private readonly c: Mamba2Config,
    private readonly s: ort.InferenceSession,
    readonly ir: ModelIR,
  ) {}

  static async open(c: Mamba2Config, seed: number, form: SsdForm): Promise<Session> {
    const store = randomWeights(c, seed);
    try {
      const ir = buildMamba2Model(c, store, { ssd: form });
      const dir = mkdtempSync(join(tmp, `rand-${form}-`));
      await saveModel(ir, dir, { externalData: 'never' });
      return new Session(c, await ort.InferenceSession.create(join(dir, 'model.onnx')), ir);
    } finally {
      await store.close();
    }
  }

  async forward(ids: number[][], states?: States): Promise<{ logits: Float32Array; states: States }> {
    const feeds: States = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [ids.length, ids[0]!.length]) };
    for (const e of ioTable(this.c).inputs) {
      if (e.role === 'input_ids') continue;
      const dims = e.shape.map((d) => (typeof d === 'number' ? d : ids.length));
      feeds[e.name] = states?.[e.name] ?? new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    const out = await this.s.run(feeds);
    const next: States = {};
    for (const [k, v] of Object.entries(out)) if (k.startsWith('present_')) next[k.replace('present_', 'past_')] = v;
    return { logits: out.logits!.data as Float32Array, states: next };
  }

  release(): Promise<void> {
    return this.s.release();
  }
}

describe('forms = chunked on random models (≤ 1e-5)', () => {
  // H = 8 heads in G = 2 groups, Q = 8; prefill 13 + 11 tokens (neither a multiple of Q), batch 2
  const c = makeConfig({ dModel: 32, nLayer: 2, vocabSize: 64, headDim: 8, dState: 8, nGroups: 2, chunkSize: 8, dtLimit: [0.001, 0.2] });
  const r = rand(11);
  const ids = (len: number) => [0, 1].map(() => Array.from({ length: len }, () => Math.floor(r(0, c.vocabSize))));
  const [first, second] = [ids(13), ids(11)];
  const step = [[3], [7]];
  type Result = Awaited<ReturnType<Session['forward']>>;
  let want: { a: Result; b: Result; c: Result };

  beforeAll(async () => {
    const s = await Session.open(c, 5, 'chunked');
    const a = await s.forward(first);
    const b = await s.forward(second, a.states);
    want = { a, b, c: await s.forward(step, b.states) };
    await s.release();
  });

  const expectClose = (label: string, got: ArrayLike<number>, ref: ArrayLike<number>) => {
    const d = maxDiff(got, ref);
    expect(d.max, `${label}: max|Δ| at ${d.at}`).toBeLessThanOrEqual(1e-5);
  };

  const emitted: Record<Exclude<SsdForm, 'chunked'>, (ops: string[]) => void> = {
    function: (ops) => expect(ops.filter((o) => o === 'ai.mamba2onnx::SSDChunkScan')).toHaveLength(c.nLayer),
    contrib: (ops) => {
      // once per layer in the sequence branch, and once more in the step branch (its default 'contrib' step)
      expect(ops.filter((o) => o === 'com.microsoft::LinearAttention')).toHaveLength(2 * c.nLayer);
      expect(ops.filter((o) => o === 'com.microsoft::CausalConvWithState')).toHaveLength(2 * c.nLayer);
    },
    scan: (ops) => expect(ops.filter((o) => o === 'Scan')).toHaveLength(c.nLayer),
  };

  for (const form of OTHER_FORMS) {
    it(`${form}: two prefill calls (second from a non-zero state), then one token`, async () => {
      const s = await Session.open(c, 5, form);
      try {
        emitted[form as Exclude<SsdForm, 'chunked'>](allNodes(s.ir).map((n) => (n.domain ? `${n.domain}::${n.opType}` : n.opType)));
        if (form === 'function') expect(s.ir.functions.map((f) => `${f.domain}::${f.name}`)).toEqual(['ai.mamba2onnx::SSDChunkScan']);
        const a = await s.forward(first);
        expectClose('call 1 logits', a.logits, want.a.logits);
        const b = await s.forward(second, a.states);
        expectClose('call 2 logits', b.logits, want.b.logits);
        for (const k of Object.keys(want.b.states))
          expectClose(`call 2 ${k}`, b.states[k]!.data as Float32Array, want.b.states[k]!.data as Float32Array);
        const t = await s.forward(step, b.states); // the one-token branch, from this form's states
        expectClose('step logits', t.logits, want.c.logits);
      } finally {
        await s.release();
      }
    });
  }
});
