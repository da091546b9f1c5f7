/**
 * Causal depthwise conv over x,B,C (docs/model.md §1.2 step 3, §3) with its state: the last K−1 pre-conv
 * columns. Prepending the state to the input and convolving without padding gives fresh prefill
 * (zero state = the causal zero padding), continuation and L < K alike.
 *
 *   past [B,Cdim,K-1] ─┐
 *   xBC  [B,L,Cdim] ─T─┴─ Concat [B,Cdim,L+K-1] ─┬─ Conv(group=Cdim) ─ SiLU ─T─ [B,L,Cdim]
 *                                                └─ last K-1 columns ──────── present [B,Cdim,K-1]
 */
import * as op from '../graph/ops.js';
import { END } from '../graph/ops-tensor.js';
import type { Value } from '../graph/value.js';
import { type Ctx, silu } from './blocks.js';

export interface ConvOut {
  y: Value;
  state: Value;
}

/** Prefill / continuation over L ≥ 1 tokens: K shifted products (default) or one Conv node (Ctx.tuning.conv). */
export function causalConv(ctx: Ctx, xbc: Value /* [B,L,Cdim] */, past: Value /* [B,Cdim,K-1] */, w: Value, b: Value | undefined): ConvOut {
  if (ctx.tuning.conv !== 'conv') return causalConvShifted(ctx, xbc, past, w, b);
  const { g, c } = ctx;
  const K = c.dConv;
  return g.scope('conv1d', () => {
    const xt = op.Transpose(g, xbc, [0, 2, 1]); // [B,Cdim,L]
    const win = op.Concat(g, [past, xt], 2); // [B,Cdim,L+K-1]
    const conv = op.Conv1d(g, win, w, b, { group: c.convDim }); // [B,Cdim,L]
    const y = op.Transpose(g, silu(g, conv), [0, 2, 1]); // [B,L,Cdim]
    const state = op.Slice(g, win, [-(K - 1)], [END], [2]); // [B,Cdim,K-1]
    return { y, state };
  });
}

/**
 * The same conv as K shifted products in the [B,L,Cdim] layout: y = Σ_k w[:,k] ⊙ win[k : k+L].
 * No Conv node (ORT CUDA's grouped 1-D conv was half of a 130m prefill: the shifted form is 6× faster
 * at L = 8192 on an H200, equal on CPU and WebGPU; BENCHMARKS.md) and no transposes of the
 * sequence; only the small state is transposed.
 */
function causalConvShifted(ctx: Ctx, xbc: Value /* [B,L,Cdim] */, past: Value /* [B,Cdim,K-1] */, w: Value, b: Value | undefined): ConvOut {
  const { g, c } = ctx;
  const K = c.dConv;
  return g.scope('conv1d', () => {
    const win = op.Concat(g, [op.Transpose(g, past, [0, 2, 1]), xbc], 1); // [B,L+K-1,Cdim]
    const wT = op.Transpose(g, op.Reshape(g, w, [c.convDim, K]), [1, 0]); // [K,Cdim]
    let y: Value | undefined;
    for (let k = 0; k < K; k++) {
      const xk = op.Slice(g, win, [k], [k === K - 1 ? END : k - (K - 1)], [1]); // [B,L,Cdim]  inputs at t−(K−1)+k
      const term = op.Mul(g, xk, op.Slice(g, wT, [k], [k + 1], [0])); // [B,L,Cdim]
      y = y ? op.Add(g, y, term) : term;
    }
    if (b) y = op.Add(g, y!, b); // [B,L,Cdim]
    const state = op.Transpose(g, op.Slice(g, win, [-(K - 1)], [END], [1]), [0, 2, 1]); // [B,Cdim,K-1]
    return { y: silu(g, y!), state };
  });
}

/** One token: x [B,Cdim]; the window is the state plus the new column (docs/model.md §3.2 step 2). */
export function causalConvStep(
  ctx: Ctx,
  xbc: Value /* [B,Cdim] */,
  past: Value /* [B,Cdim,K-1] */,
  w: Value,
  b: Value | undefined,
): ConvOut {
  const { g, c } = ctx;
  return g.scope('conv1d', () => {
    const win = op.Concat(g, [past, op.Unsqueeze(g, xbc, [2])], 2); // [B,Cdim,K]
    const w2 = op.Reshape(g, w, [c.convDim, c.dConv]); // [Cdim,K]
    let y = op.ReduceSum(g, op.Mul(g, win, w2), [2], false); // [B,Cdim]
    if (b) y = op.Add(g, y, b); // [B,Cdim]
    const state = op.Slice(g, win, [1], [END], [2]); // [B,Cdim,K-1]
    return { y: silu(g, y), state };
  });
}
