/**
 * Plain TypeScript reference of ai.mamba2onnx::SSDChunkScan: the sequential recurrence of
 * src/reference/ssd.ts (the ground truth the chunked body must reproduce; chunk_size does not
 * change the result, dt_limit is informational: dt arrives already clamped).
 */
import { ssdSequential } from '../../src/reference/ssd.js';
import type { FloatArray } from '../../src/reference/tensor.js';

type T = { data: FloatArray; dims: number[] };

export interface SsdChunkScanInputs {
  x: T; // [B,L,H,P]
  dt: T; // [B,L,H]
  A: T; // [H]
  B: T; // [B,L,G,N]
  C: T; // [B,L,G,N]
  h0: T; // [B,H,P,N]
}

export function ssdChunkScan(inp: SsdChunkScanInputs): { y: Float64Array; hT: Float64Array; dims: { y: number[]; hT: number[] } } {
  const t = (v: T) => ({ data: v.data, shape: v.dims });
  const r = ssdSequential(t(inp.x), t(inp.dt), inp.A.data, t(inp.B), t(inp.C), t(inp.h0));
  return { y: r.y.data, hT: r.hT.data, dims: { y: [...r.y.shape], hT: [...r.hT.shape] } };
}
