/**
 * The SSD layer as its plain recurrence (docs/model.md §1.2 "Discretisation", §3.2 steps 4–6), one token at a
 * time, in float64. It is the ground truth that the chunked dual form (§2) must reproduce.
 *
 *   h_t = exp(dt_t·A_h) · h_{t−1} + dt_t · x_t ⊗ B_{t,g(h)}      h_t ∈ R^{P×N}
 *   y_t = h_t · C_{t,g(h)}                                       y_t ∈ R^{P}   (D·x is added by the mixer)
 *   g(h) = floor(h / (H/G))
 */
import { numel, type FloatArray, type Tensor } from './tensor.js';

export interface SsdResult {
  /** [B, L, H, P], without the D skip term. */
  readonly y: Tensor<Float64Array>;
  /** [B, H, P, N], the state after the last token. */
  readonly hT: Tensor<Float64Array>;
}

function dims(t: Tensor, rank: number, name: string, axes: string): number[] {
  if (t.shape.length !== rank) throw new RangeError(`ssdSequential(${name}): expected [${axes}], got [${t.shape.join(', ')}]`);
  return [...t.shape];
}

function same(name: string, axes: string, got: readonly number[], want: readonly number[]): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new RangeError(`ssdSequential(${name}): expected [${axes}] = [${want.join(', ')}], got [${got.join(', ')}]`);
  }
}

/**
 * x [B,L,H,P] (conv output, not multiplied by dt); dt [B,L,H] (after softplus and clamp);
 * A (H) (= −exp(A_log)); Bm, Cm [B,L,G,N]; h0 [B,H,P,N] (zeros when absent).
 */
export function ssdSequential(x: Tensor, dt: Tensor, A: FloatArray, Bm: Tensor, Cm: Tensor, h0?: Tensor): SsdResult {
  const [b, l, h, p] = dims(x, 4, 'x', 'B, L, H, P') as [number, number, number, number];
  same('dt', 'B, L, H', dt.shape, [b, l, h]);
  if (A.length !== h) throw new RangeError(`ssdSequential(A): expected ${h} elements (H), got ${A.length}`);
  const [, , g, n] = dims(Bm, 4, 'Bm', 'B, L, G, N') as [number, number, number, number];
  same('Bm', 'B, L, G, N', Bm.shape, [b, l, g, n]);
  same('Cm', 'B, L, G, N', Cm.shape, [b, l, g, n]);
  if (g < 1 || h % g !== 0) throw new RangeError(`ssdSequential(Bm): H=${h} must be a multiple of G=${g}`);
  if (h0) same('h0', 'B, H, P, N', h0.shape, [b, h, p, n]);
  const headsPerGroup = h / g;
  const state = h0 ? Float64Array.from(h0.data) : new Float64Array(numel([b, h, p, n]));
  const y = new Float64Array(numel([b, l, h, p]));
  for (let i = 0; i < b; i++) {
    for (let t = 0; t < l; t++) {
      for (let hh = 0; hh < h; hh++) {
        const grp = Math.floor(hh / headsPerGroup);
        const d = dt.data[(i * l + t) * h + hh]!;
        const decay = Math.exp(d * A[hh]!);
        const bOff = ((i * l + t) * g + grp) * n;
        const xOff = ((i * l + t) * h + hh) * p;
        const sOff = (i * h + hh) * p * n;
        for (let pp = 0; pp < p; pp++) {
          const dx = d * x.data[xOff + pp]!;
          let acc = 0;
          for (let nn = 0; nn < n; nn++) {
            const k = sOff + pp * n + nn;
            const v = decay * state[k]! + dx * Bm.data[bOff + nn]!;
            state[k] = v;
            acc += v * Cm.data[bOff + nn]!;
          }
          y[xOff + pp] = acc;
        }
      }
    }
  }
  return { y: { data: y, shape: [b, l, h, p] }, hT: { data: state, shape: [b, h, p, n] } };
}
