/** Test helpers: run a ModelIR in onnxruntime-node, random tensors, max |Δ| with its index. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelIR } from '../../src/graph/ir.js';
import { saveModel } from '../../src/graph/serialize.js';
import { mulberry32 } from '../../src/runtime/sampling.js';

export type Feeds = Record<string, { data: Float32Array | BigInt64Array; dims: number[] }>;

/** Saves `ir` to a temp dir, runs it once on the CPU EP and returns every output as float32/int64 arrays. */
export async function runIR(ir: ModelIR, feeds: Feeds): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'm2o-ir-'));
  try {
    await saveModel(ir, dir, { externalData: 'never' });
    const s = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const inputs: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds))
      inputs[k] = new ort.Tensor(v.data instanceof BigInt64Array ? 'int64' : 'float32', v.data, v.dims);
    const out = await s.run(inputs);
    const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [k, t] of Object.entries(out)) res[k] = { data: t.data as Float32Array, dims: t.dims };
    await s.release();
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic uniform numbers in [lo, hi) (the runtime's mulberry32). */
export function rand(seed: number): (lo?: number, hi?: number) => number {
  const u = mulberry32(seed);
  return (lo = -1, hi = 1) => lo + (hi - lo) * u();
}

export function randArray(n: number, r: (lo?: number, hi?: number) => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => r(lo, hi));
}

/** Max |a − b| and where; lengths must match. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`maxDiff: lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return { max: NaN, at: i };
    if (!(d <= max)) {
      max = d;
      at = i;
    }
  }
  return { max, at };
}
