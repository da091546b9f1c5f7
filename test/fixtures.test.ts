/**
 * End to end against HF transformers: export each fixture (every checkpoint format it has), then
 *  - logits of every case within 1e-4 (fp32),
 *  - final conv/ssm states within 1e-4 (the project's own fixtures record them),
 *  - a prefill split in two calls equals one call,
 *  - greedy decoding one token at a time through the state reproduces the reference ids.
 * The project's fixtures are in test/fixtures (made by test/reference/make_fixtures.py and, for the
 * hybrids bamba-* and mamba2attn-*, make_hybrid_fixtures.py on the GPU machine); ../shared/fixtures,
 * when present, is an independent cross-check. Hybrids carry KV caches in the states (past_key.i…).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hybridOf } from '../src/package/layers.js';
import { exportModel } from '../src/export/index.js';
import { maxDiff } from './helpers/ort.js';
import { argmax, Runner } from './helpers/model-runner.js';

interface Reference {
  cases: { input_ids: number[][]; logits: number[][][] }[];
  greedy: { input_ids: number[][]; output_ids: number[][]; eos_token_id: number; real_vocab_size?: number };
  final_states?: { case_index: number; conv_state: number[][][][]; ssm_state: number[][][][][] };
  /** Hybrids made by make_hybrid_fixtures.py: the rotary HF used (2·len(inv_freq)) and its rope_parameters. */
  rotary?: { rotary_dim: number; rope_parameters?: { rope_theta?: number } };
}

const OWN = resolve(import.meta.dirname, 'fixtures');
const SHARED = resolve(import.meta.dirname, '../../shared/fixtures');

function fixtures(root: string): { name: string; dir: string; formats: string[] }[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => existsSync(join(root, n, 'reference.json')))
    .map((n) => ({ name: n, dir: join(root, n), formats: ['hf', 'mamba_ssm'].filter((f) => existsSync(join(root, n, f))) }));
}

const tmp = mkdtempSync(join(tmpdir(), 'm2o-fx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function suite(label: string, root: string): void {
  const list = fixtures(root);
  if (list.length === 0) {
    it.skip(`${label}: no fixtures at ${root} (skipped)`, () => {});
    return;
  }
  for (const fx of list) {
    for (const format of fx.formats) {
      describe(`${label}/${fx.name}/${format}`, () => {
        const ref = JSON.parse(readFileSync(join(fx.dir, 'reference.json'), 'utf8')) as Reference;
        let run: Runner;
        beforeAll(async () => {
          const out = join(tmp, `${label}-${fx.name}-${format}`);
          await exportModel({ checkpointDir: join(fx.dir, format) }, { outDir: out });
          run = await Runner.open(out);
        });
        afterAll(() => run?.release());

        it('logits of every case within 1e-4 of HF', async () => {
          for (const cs of ref.cases) {
            const got = await run.forward(cs.input_ids);
            const d = maxDiff(got.logits, cs.logits.flat(2));
            expect(d.max, `case ${cs.input_ids.length}x${cs.input_ids[0]!.length}: max|Δ| at ${d.at}`).toBeLessThanOrEqual(1e-4);
          }
        });

        it.runIf(ref.final_states !== undefined)('final states within 1e-4 of HF', async () => {
          const fs = ref.final_states!;
          const got = await run.forward(ref.cases[fs.case_index]!.input_ids);
          const conv = got.states['past_conv.0']!.data as Float32Array;
          const ssm = got.states['past_ssm.0']!.data as Float32Array;
          expect(maxDiff(conv, fs.conv_state[0]!.flat(2)).max).toBeLessThanOrEqual(1e-4);
          expect(maxDiff(ssm, fs.ssm_state[0]!.flat(3)).max).toBeLessThanOrEqual(1e-4);
        });

        it.runIf(ref.rotary !== undefined)('reads the rotary width and base HF used', () => {
          const a = hybridOf(run.meta.config)?.attention;
          expect(a?.rotaryDim).toBe(ref.rotary!.rotary_dim);
          if (ref.rotary!.rope_parameters?.rope_theta !== undefined) expect(a?.ropeTheta).toBe(ref.rotary!.rope_parameters.rope_theta);
        });

        it('a prefill split in two calls equals one call', async () => {
          const ids = ref.cases.find((c) => c.input_ids[0]!.length > 20)!.input_ids;
          const L = ids[0]!.length;
          const whole = await run.forward(ids);
          const a = await run.forward(ids.map((r) => r.slice(0, 20)));
          const b = await run.forward(
            ids.map((r) => r.slice(20)),
            a.states,
          );
          const V = whole.dims[2]!;
          expect(maxDiff(b.logits, whole.logits.subarray(20 * V, L * V)).max).toBeLessThan(1e-5);
          for (const k of Object.keys(whole.states)) {
            expect(maxDiff(b.states[k]!.data as Float32Array, whole.states[k]!.data as Float32Array).max, k).toBeLessThan(1e-5);
          }
        });

        it('greedy decoding one token at a time reproduces HF', async () => {
          const gr = ref.greedy;
          const want = gr.output_ids[0]!;
          const ids = [...gr.input_ids[0]!];
          const V = run.meta.config.vocabSize;
          const real = gr.real_vocab_size ?? run.meta.config.realVocabSize;
          let step = await run.forward([ids]);
          while (ids.length < want.length) {
            const rows = step.dims[1]!;
            const next = argmax(step.logits, V, rows - 1, real, gr.eos_token_id);
            ids.push(next);
            step = await run.forward([[next]], step.states);
          }
          expect(ids).toEqual(want);
        });
      });
    }
  }
}

suite('own', OWN);
suite('shared', SHARED);
