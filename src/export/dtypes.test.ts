/**
 * fp16 / int8 / int4 exports: the conversions (quantize.ts), ORT's MatMulNBits layout, the
 * dequantizing embedding Gather, the dtype policy of the graph (what stays float32), and end to end
 * on the fixtures against their fp32 export (compare.ts): accuracy, sizes, meta; fp16 on WebGPU when
 * an adapter exists (lavapipe here).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { f16round, getFloat16 } from '@petamoriken/float16';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBuilder } from '../graph/builder.js';
import type { GraphIR, ModelIR } from '../graph/ir.js';
import { loadModelSummary } from '../graph/load.js';
import { MS_DOMAIN } from '../graph/opset.js';
import { MatMulNBits } from '../graph/ops-quant.js';
import { tensorFromArray } from '../graph/tensor.js';
import { maxDiff, rand, randArray, runIR } from '../../test/helpers/ort.js';
import { embed } from './blocks.js';
import { openCheckpoint } from './checkpoint/index.js';
import { compareModels, klDivergence } from '../runtime/compare.js';
import { loadConfig } from './config.js';
import { exportModel } from './index.js';
import { buildMamba2Model } from './lm.js';
import type { ModelMeta, WeightDType } from '../package/meta.js';
import { dequantizeBlockwise, float16Bits, quantizeBlockwise, toFloat16 } from './quantize.js';

const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'm2o-dt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const half = (bits: number): number => {
  const dv = new DataView(new ArrayBuffer(2));
  dv.setUint16(0, bits, true);
  return getFloat16(dv, 0, true);
};

/** x [M,K] · W[N,K]ᵀ in float64. */
function matmulT(x: Float32Array, w: Float32Array, M: number, K: number, N: number): Float32Array {
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[i * K + k]! * w[n * K + k]!;
      y[i * N + n] = s;
    }
  return y;
}

describe('conversions', () => {
  it('float16Bits rounds like IEEE (nearest even), subnormals and overflow included', () => {
    const r = rand(1);
    const vals = [0, -0, 1, -1, 65504, 65519, 6.1e-5, 5.96e-8, 2.9e-8, 3e-8, 1e-9, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051];
    for (let i = 0; i < 2000; i++) vals.push(r(-1, 1) * 10 ** r(-9, 4.8));
    for (const v of vals) expect(half(float16Bits(v)), `v = ${v}`).toBe(f16round(v));
    expect(float16Bits(65520)).toBe(0x7c00);
    expect(() => toFloat16(Float32Array.of(1, 70000), 'w')).toThrow(/w: value 70000 at flat index 1 does not fit float16/);
  });

  it('MatMulNBits packing: values along K, low nibble first, one block blob per (row, block)', () => {
    const w = Float32Array.from({ length: 16 }, (_, k) => k / 15); // one block: scale 1/15, zp 0, q = k
    const q4 = quantizeBlockwise(w, 1, 16, 4, 16);
    expect(Array.from(q4.b)).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(q4.zeroPoints[0]).toBe(0);
    const q8 = quantizeBlockwise(
      Float32Array.from(w, (v) => v - 0.5),
      1,
      16,
      8,
      16,
    );
    expect(q8.zeroPoints[0]).toBe(128); // range [-0.5, 0.5]: 0 maps to 127.5 → 128
  });

  it.each([4, 8] as const)('blockwise int%i error ≤ scale/2 per element (K = 40 pads the last block)', (bits) => {
    const [N, K, bs] = [6, 40, 16];
    const w = randArray(N * K, rand(bits), -2, 3);
    const q = quantizeBlockwise(w, N, K, bits, bs);
    const d = dequantizeBlockwise(q);
    for (let i = 0; i < N * K; i++) {
      const scale = q.scales[Math.floor(i / K) * 3 + Math.floor((i % K) / bs)]!;
      expect(Math.abs(d[i]! - w[i]!), `element ${i}`).toBeLessThanOrEqual(scale / 2 + 1e-6);
    }
  });

  it('klDivergence is 0 for equal logits, positive otherwise, shift invariant', () => {
    expect(klDivergence([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(klDivergence([1, 2, 3], [11, 12, 13])).toBeCloseTo(0, 12);
    expect(klDivergence([3, 0, 0], [0, 0, 3])).toBeGreaterThan(1);
  });
});

describe('ORT agrees with the layout', () => {
  it.each([
    [4, 16],
    [4, 32],
    [8, 16],
    [8, 32],
  ] as const)('MatMulNBits bits=%i block=%i equals x·dequant(W)ᵀ (K = 40, rank-3 A)', async (bits, bs) => {
    const [M, K, N] = [5, 40, 24];
    const r = rand(bits * 100 + bs);
    const x = randArray(M * K, r);
    const q = quantizeBlockwise(randArray(N * K, r), N, K, bits, bs);
    const m = new ModelBuilder({ name: 't', opsets: { [MS_DOMAIN]: 1 } });
    const g = m.graph;
    const kb = Math.ceil(K / bs);
    const y = MatMulNBits(
      g,
      g.input('x', 'float32', [1, M, K]),
      g.initializer('b', tensorFromArray('uint8', [N, kb, (bs * bits) / 8], q.b)),
      g.initializer('s', tensorFromArray('float32', [N, kb], q.scales)),
      g.initializer('z', tensorFromArray('uint8', [N, Math.ceil((kb * bits) / 8)], q.zeroPoints)),
      undefined,
      { K, N, bits, blockSize: bs },
    );
    g.output(y, 'y');
    const out = await runIR(m.finish(), { x: { data: x, dims: [1, M, K] } });
    expect(out.y!.dims).toEqual([1, M, N]);
    expect(maxDiff(out.y!.data, matmulT(x, dequantizeBlockwise(q), M, K, N)).max).toBeLessThan(1e-5);
  });

  it.each([4, 8] as const)('the dequantizing embedding Gather (int%i) returns the dequantized rows', async (bits) => {
    const [V, D, bs] = [11, 40, 16]; // 3 blocks per row: odd packed zero points, padded last block
    const q = quantizeBlockwise(randArray(V * D, rand(7)), V, D, bits, bs);
    const m = new ModelBuilder({ name: 't' });
    const g = m.graph;
    const kb = 3;
    const e = {
      kind: 'nbits' as const,
      N: V,
      K: D,
      bits,
      blockSize: bs,
      accuracyLevel: 0 as const,
      b: g.initializer('b', tensorFromArray('uint8', [V, kb, (bs * bits) / 8], q.b)),
      scales: g.initializer('s', tensorFromArray('float32', [V, kb], q.scales)),
      zeroPoints: g.initializer('z', tensorFromArray('uint8', [V, Math.ceil((kb * bits) / 8)], q.zeroPoints)),
    };
    g.output(embed(g, e, g.input('ids', 'int64', ['batch', 'sequence'])), 'h');
    const ids = [3, 0, 10, 3, 7, 1];
    const out = await runIR(m.finish(), { ids: { data: BigInt64Array.from(ids.map(BigInt)), dims: [2, 3] } });
    const deq = dequantizeBlockwise(q);
    expect(out.h!.dims).toEqual([2, 3, D]);
    expect(maxDiff(out.h!.data, Float32Array.from(ids.flatMap((t) => Array.from(deq.subarray(t * D, (t + 1) * D))))).max).toBeLessThan(
      1e-6,
    );
  });
});

/** Every graph of a model (main graph, If branches), depth first. */
function graphs(g: GraphIR): GraphIR[] {
  const sub = g.nodes.flatMap((n) => Object.values(n.attributes).flatMap((a) => (a.type === 'graph' ? graphs(a.value) : [])));
  return [g, ...sub];
}

async function buildIR(fixture: string, dtype: WeightDType, blockSize = 32): Promise<ModelIR> {
  const dir = join(FIXTURES, fixture, 'hf');
  const ck = await openCheckpoint(dir);
  try {
    return buildMamba2Model(await loadConfig(dir, ck.format), ck.store, { weights: { dtype, blockSize } });
  } finally {
    await ck.store.close();
  }
}

describe('dtype policy of the graph', () => {
  it('fp16: only the embedding and the projections hold float16; SSD, norms, residual and I/O stay float32', async () => {
    const ir = await buildIR('small-g2', 'fp16');
    const half16 = new Set<string>();
    for (const g of graphs(ir.graph)) {
      for (const v of g.valueInfo) if (v.dtype === 'float16') half16.add(v.name);
      for (const n of g.nodes) {
        if (n.outputs.some((o) => half16.has(o)) || n.inputs.some((i) => half16.has(i))) {
          expect(n.name, `${n.opType} touches float16`).toMatch(
            /\/(embeddings|in_proj|out_proj|lm_head)\/(Cast|Gemm|Gather|Reshape)(_\d+)?$/,
          );
        }
      }
    }
    expect(half16.size).toBeGreaterThan(0);
    const f16Inits = ir.graph.initializers.filter((i) => i.data.dtype === 'float16').map((i) => i.name);
    expect(
      f16Inits.every((n) => /(embeddings|in_proj|out_proj)\.weight$/.test(n)),
      f16Inits.join(),
    ).toBe(true);
    expect(f16Inits).toHaveLength(1 + 2 * 4); // tied head reads the embedding
    for (const v of [...ir.graph.inputs, ...ir.graph.outputs]) if (v.name !== 'input_ids') expect(v.dtype, v.name).toBe('float32');
  });

  it('int4: MatMulNBits for every projection in both branches, nothing else quantized, com.microsoft imported', async () => {
    const ir = await buildIR('tiny-g1', 'int4');
    const count = (op: string) => graphs(ir.graph).reduce((s, g) => s + g.nodes.filter((n) => n.opType === op).length, 0);
    expect(count('MatMulNBits')).toBe(2 * (2 * 2 + 1)); // (in_proj, out_proj) × 2 layers + lm_head, per branch
    expect(count('Gemm')).toBe(0);
    expect(ir.opsetImports[MS_DOMAIN]).toBe(1);
    const kinds = ir.graph.initializers.filter((i) => i.data.dtype === 'uint8' || i.data.dtype === 'float16').map((i) => i.name);
    expect(
      kinds.every((n) => /(embeddings|in_proj|out_proj|lm_head)\.weight_(Q4|zero_points)$/.test(n)),
      kinds.join(),
    ).toBe(true);
  });
});

describe('tied embedding kept float32 (quantizeEmbedding: false)', () => {
  it('the lm_head gets its own int8 copy; the model runs close to fp32', async () => {
    const src = { checkpointDir: join(FIXTURES, 'small-g2', 'hf') };
    const [ref, q] = [join(tmp, 'tied-fp32'), join(tmp, 'tied-int8')];
    await exportModel(src, { outDir: ref });
    const { meta } = await exportModel(src, { outDir: q, dtype: 'int8', quantizeEmbedding: false });
    expect(meta.quantization?.quantized).toEqual(['in_proj', 'out_proj', 'lm_head']);
    const s = await loadModelSummary(join(q, 'model.onnx'));
    expect(s.opCounts['com.microsoft::MatMulNBits']).toBe(2 * (2 * 4 + 1));
    const r = await compareModels(q, ref, { prompts: [[5, 6, 7, 8, 9]], steps: 10 });
    expect(r.agreement).toBeGreaterThanOrEqual(0.85);
  });
});

const PROMPTS = [
  [3, 17, 5, 9, 22, 41, 7, 8, 30, 12, 4, 6, 19, 33, 25, 11, 2, 15, 28, 10],
  [1, 2, 3],
  Array.from({ length: 37 }, (_, i) => (i * 13 + 5) % 60),
];

async function hasWebGpu(): Promise<boolean> {
  const m = new ModelBuilder({ name: 'probe' });
  m.graph.output(m.graph.input('x', 'float32', [1]), 'y');
  const dir = mkdtempSync(join(tmpdir(), 'm2o-gpu-'));
  try {
    const { saveModel } = await import('../graph/serialize.js');
    await saveModel(m.finish(), dir, { externalData: 'never' });
    const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), { executionProviders: ['webgpu'], logSeverityLevel: 4 });
    await s.release();
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const WEBGPU = await hasWebGpu();

for (const [fixture, blockSize] of [
  ['tiny-g1', 16],
  ['small-g2', 32],
] as const) {
  describe(`${fixture} exported in each dtype vs its fp32 export (block ${blockSize})`, () => {
    const dirs: Partial<Record<WeightDType, string>> = {};
    const metas: Partial<Record<WeightDType, ModelMeta>> = {};
    beforeAll(async () => {
      for (const dtype of ['fp32', 'fp16', 'int8', 'int4'] as const) {
        dirs[dtype] = join(tmp, `${fixture}-${dtype}`);
        metas[dtype] = (
          await exportModel({ checkpointDir: join(FIXTURES, fixture, 'hf') }, { outDir: dirs[dtype]!, dtype, blockSize })
        ).meta;
      }
    });

    it.each([
      ['fp16', 0.95, 1e-4],
      ['int8', 0.85, 5e-3],
      ['int4', 0, Infinity],
    ] as const)('%s: greedy agreement over 20 steps ≥ %f (numbers reported)', async (dtype, minAgree, maxKL) => {
      const r = await compareModels(dirs[dtype]!, dirs.fp32!, { prompts: PROMPTS, steps: 20 });
      console.info(
        `${fixture} ${dtype}: max|Δ| ${r.maxAbsDiff.toExponential(2)}, mean|Δ| ${r.meanAbsDiff.toExponential(2)}, KL ${r.meanKL.toExponential(2)} (max ${r.maxKL.toExponential(2)}), greedy ${r.agree}/${r.steps}`,
      );
      expect(r.steps).toBe(60);
      expect(r.positions).toBe(PROMPTS.reduce((s, p) => s + p.length + 19, 0));
      expect(Number.isFinite(r.maxAbsDiff)).toBe(true);
      expect(r.agreement).toBeGreaterThanOrEqual(minAgree);
      expect(r.meanKL).toBeLessThanOrEqual(maxKL);
    });

    it('meta records dtype and quantization', () => {
      expect(metas.fp16!.weightDType).toBe('fp16');
      expect(metas.fp16!.quantization).toBeUndefined();
      expect(metas.int4!.weightDType).toBe('int4');
      expect(metas.int4!.quantization).toEqual({
        method: 'MatMulNBits',
        bits: 4,
        blockSize,
        accuracyLevel: 0,
        symmetric: false,
        quantized: ['embedding', 'in_proj', 'out_proj', 'lm_head'],
      });
      expect(metas.int8!.opsets[MS_DOMAIN]).toBe(1);
    });

    it('the projection weights shrink 2× (fp16), ≈ 32/(8+40/bs) (int8), ≈ 32/(4+36/bs) (int4)', async () => {
      const PROJ = /(embeddings|in_proj|out_proj|lm_head)\.weight(_Q\d|_scales|_zero_points)?$/;
      const sizes = async (dtype: WeightDType) => {
        const ir = await buildIR(fixture, dtype, blockSize);
        const proj = ir.graph.initializers.filter((i) => PROJ.test(i.name)).reduce((t, i) => t + i.data.byteLength, 0);
        const all = ir.graph.initializers.reduce((t, i) => t + i.data.byteLength, 0);
        expect((await loadModelSummary(join(dirs[dtype]!, 'model.onnx'))).initializers.bytes, `${dtype}: file vs graph`).toBe(all);
        return { proj, all };
      };
      const [f32, f16, i8, i4] = [await sizes('fp32'), await sizes('fp16'), await sizes('int8'), await sizes('int4')];
      expect(f32.proj / f16.proj).toBe(2);
      expect(f32.proj / i8.proj).toBeCloseTo(32 / (8 + 40 / blockSize), 6);
      expect(f32.proj / i4.proj).toBeCloseTo(32 / (4 + 36 / blockSize), 6);
      expect(f32.all - f32.proj).toBe(f16.all - f16.proj); // everything else stays float32
      expect([f16.all, i8.all, i4.all].every((b, k, a) => b < (k ? a[k - 1]! : f32.all))).toBe(true);
    });

    it.runIf(WEBGPU && fixture === 'small-g2')('fp16 and int4 run on the WebGPU EP', async () => {
      const f16 = await compareModels(dirs.fp16!, dirs.fp32!, { prompts: PROMPTS.slice(0, 1), steps: 20, ep: 'webgpu' });
      expect(f16.ep).toBe('webgpu');
      expect(f16.agreement).toBeGreaterThanOrEqual(0.95);
      const i4 = await compareModels(dirs.int4!, dirs.int4!, { prompts: PROMPTS.slice(0, 1), steps: 5, ep: 'webgpu' });
      expect(i4.maxAbsDiff).toBeLessThan(1e-3); // WebGPU's MatMulNBits and dequantizing Gather = the CPU's
    });
  });
}

describe('option errors', () => {
  it.each([
    [{ dtype: 'int2' as WeightDType }, /dtype: expected one of fp32, fp16, int8, int4, got 'int2'/],
    [{ dtype: 'int4' as const, blockSize: 24 }, /blockSize: expected a power of two in \[16, 4096\], got 24/],
    [{ dtype: 'int8' as const, accuracyLevel: 5 as 4 }, /accuracyLevel: expected 0, 1, 2, 3 or 4, got 5/],
  ])('%o is refused before anything is written', async (opts, msg) => {
    const out = join(tmp, 'refused');
    await expect(exportModel({ checkpointDir: join(FIXTURES, 'tiny-g1', 'hf') }, { outDir: out, ...opts })).rejects.toThrow(msg);
  });
});
