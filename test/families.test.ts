/**
 * The model families of issue 16 (IBM Granite-4.0-H, NVIDIA Nemotron-H) against HF transformers,
 * on the fixtures of test/reference/make_family_fixtures.py, with the numbers printed:
 *  - every SSD form (chunked, function, contrib, scan): logits of every case within 1e-4 of HF;
 *  - the decode path: a prefill then one token at a time through the state equals the full sequence;
 *  - greedy decoding one token at a time, and the runtime's generate(), reproduce HF's ids;
 *  - fp16 / int8 / int4 exports against the fp32 export (the tolerances of dtypes.test.ts), the
 *    router and norms kept float32.
 * (fixtures.test.ts and ssd-forms.test.ts run these fixtures through their generic checks too.)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../src/export/index.js';
import { loadModelSummary } from '../src/graph/load.js';
import { compareModels } from '../src/runtime/compare.js';
import { Mamba2Model } from '../src/runtime/model.js';
import type { SsdForm, WeightDType } from '../src/package/meta.js';
import { maxDiff } from './helpers/ort.js';
import { argmax, Runner } from './helpers/model-runner.js';

interface Reference {
  cases: { input_ids: number[][]; logits: number[][][] }[];
  greedy: { input_ids: number[][]; output_ids: number[][]; eos_token_id: number };
}

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const NAMES = ['granite-dense', 'granite-moe', 'nemotron-h', 'nemotron-h-moe'].filter((n) =>
  existsSync(join(FIXTURES, n, 'reference.json')),
);
const FORMS: SsdForm[] = ['chunked', 'function', 'contrib', 'scan'];

const tmp = mkdtempSync(join(tmpdir(), 'm2o-families-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

if (NAMES.length === 0) it.skip(`no family fixtures in ${FIXTURES} (skipped)`, () => {});

for (const name of NAMES) {
  const ckpt = join(FIXTURES, name, 'hf');
  const ref = JSON.parse(readFileSync(join(FIXTURES, name, 'reference.json'), 'utf8')) as Reference;
  const dir = (tag: string): string => join(tmp, `${name}-${tag}`);

  describe(`${name}: every SSD form against HF`, () => {
    it.each(FORMS)('--ssd %s: logits of every case within 1e-4, greedy ids equal', async (ssd) => {
      await exportModel({ checkpointDir: ckpt }, { outDir: dir(ssd), ssd });
      const run = await Runner.open(dir(ssd));
      try {
        let worst = 0;
        for (const cs of ref.cases) {
          const d = maxDiff((await run.forward(cs.input_ids)).logits, cs.logits.flat(2));
          expect(d.max, `${cs.input_ids.length}x${cs.input_ids[0]!.length}: max|Δ| at ${d.at}`).toBeLessThanOrEqual(1e-4);
          worst = Math.max(worst, d.max);
        }
        const gr = ref.greedy;
        const ids = [...gr.input_ids[0]!];
        let step = await run.forward([ids]);
        while (ids.length < gr.output_ids[0]!.length) {
          const next = argmax(step.logits, run.meta.config.vocabSize, step.dims[1]! - 1, run.meta.config.realVocabSize, gr.eos_token_id);
          ids.push(next);
          step = await run.forward([[next]], step.states);
        }
        expect(ids).toEqual(gr.output_ids[0]);
        console.info(
          `${name} --ssd ${ssd}: max|Δ| vs HF ${worst.toExponential(2)} over ${ref.cases.length} cases; greedy ${ids.length - gr.input_ids[0]!.length}/${gr.output_ids[0]!.length - gr.input_ids[0]!.length} ids equal`,
        );
      } finally {
        await run.release();
      }
    });
  });

  describe(`${name}: decode path and runtime`, () => {
    let run: Runner;
    beforeAll(async () => {
      run = await Runner.open(dir('chunked'));
    });
    afterAll(() => run?.release());

    it('a prefill of 9 tokens, then one token at a time through the state, equals the full sequence', async () => {
      const ids = ref.cases[0]!.input_ids; // 1 × 37, more than four chunks
      const L = ids[0]!.length;
      const V = run.meta.config.vocabSize;
      const whole = await run.forward(ids);
      let s = await run.forward([ids[0]!.slice(0, 9)]);
      let worst = maxDiff(s.logits, whole.logits.subarray(0, 9 * V)).max;
      for (let t = 9; t < L; t++) {
        s = await run.forward([[ids[0]![t]!]], s.states);
        worst = Math.max(worst, maxDiff(s.logits, whole.logits.subarray(t * V, (t + 1) * V)).max);
      }
      for (const k of Object.keys(whole.states))
        worst = Math.max(worst, maxDiff(s.states[k]!.data as Float32Array, whole.states[k]!.data as Float32Array).max);
      console.info(`${name}: steps through the state vs the full sequence, max|Δ| ${worst.toExponential(2)} (logits and every state)`);
      expect(worst).toBeLessThan(1e-5);
    });

    it('a batch of two rows: 15 tokens, then the 16th as a single step, equals HF at the last position', async () => {
      const cs = ref.cases[1]!; // 2 × 16
      const V = run.meta.config.vocabSize;
      const head = await run.forward(cs.input_ids.map((r) => r.slice(0, 15)));
      const step = await run.forward(
        cs.input_ids.map((r) => [r[15]!]),
        head.states,
      );
      const want = cs.logits.flatMap((row) => row[15]!);
      const d = maxDiff(step.logits, want);
      expect(step.logits.length).toBe(2 * V);
      expect(d.max, `max|Δ| at ${d.at}`).toBeLessThanOrEqual(1e-4);
    });

    it("the runtime's generate() reproduces HF's greedy ids", async () => {
      const m = await Mamba2Model.load(dir('chunked'));
      try {
        const gr = ref.greedy;
        const prompt = gr.input_ids[0]!;
        const want = gr.output_ids[0]!.slice(prompt.length);
        const r = await m.generate(prompt, { maxNewTokens: want.length, stopTokenIds: [] });
        expect(r.outputIds).toEqual(want);
      } finally {
        await m.release();
      }
    });
  });

  describe(`${name}: weight dtypes against the fp32 export`, () => {
    const PROMPTS = [ref.cases[0]!.input_ids[0]!.slice(0, 20), [1, 2, 3], ref.greedy.input_ids[0]!];
    beforeAll(async () => {
      for (const dtype of ['fp16', 'int8', 'int4'] as const)
        await exportModel({ checkpointDir: ckpt }, { outDir: dir(dtype), dtype, blockSize: 16 });
    });

    it.each([
      ['fp16', 0.95, 1e-4],
      ['int8', 0.85, 5e-3],
      ['int4', 0, Infinity],
    ] as const)('%s: greedy agreement over 20 steps ≥ %f (numbers reported)', async (dtype: WeightDType, minAgree, maxKL) => {
      const r = await compareModels(dir(dtype), dir('chunked'), { prompts: PROMPTS, steps: 20 });
      console.info(
        `${name} ${dtype}: max|Δ| ${r.maxAbsDiff.toExponential(2)}, KL ${r.meanKL.toExponential(2)} (max ${r.maxKL.toExponential(2)}), greedy ${r.agree}/${r.steps}`,
      );
      expect(Number.isFinite(r.maxAbsDiff)).toBe(true);
      expect(r.agreement).toBeGreaterThanOrEqual(minAgree);
      expect(r.meanKL).toBeLessThanOrEqual(maxKL);
    });

    it('int4: every projection is MatMulNBits (experts included); norms and the router stay float32', async () => {
      const s = await loadModelSummary(join(dir('int4'), 'model.onnx'));
      expect(s.opCounts['ai.onnx::Gemm'] ?? 0).toBe(countRouters(name)); // only the routers' float32 Gemms
      expect(s.opCounts['com.microsoft::MatMulNBits']).toBeGreaterThan(0);
    });
  });
}

/** The routers' float32 Gemms: one per MoE block and branch (step and sequence). */
function countRouters(name: string): number {
  const cfg = JSON.parse(readFileSync(join(FIXTURES, name, 'hf', 'config.json'), 'utf8')) as {
    model_type: string;
    num_local_experts?: number;
    num_hidden_layers?: number;
    layers_block_type?: string[];
  };
  if (cfg.model_type === 'nemotron_h') return 2 * (cfg.layers_block_type ?? []).filter((t) => t === 'moe').length;
  return (cfg.num_local_experts ?? 0) > 0 ? 2 * cfg.num_hidden_layers! : 0;
}
