/**
 * SSD as the chunked quadratic/linear dual form, in MatMul ops (docs/model.md §2; Dao & Gu 2024, §6;
 * tommyip/mamba2-minimal `ssd`). Group-aware layout (docs/model.md §2.6): heads are split as H = G·R with
 * R = H/G, so B and C are never copied per head.
 *
 * Glossary: B batch, L sequence, Lp L padded to a multiple of Q, Q chunk length, NC = Lp/Q chunks
 * (NC, not C: C is the SSM's output matrix), H heads, G groups, R = H/G heads per group, P head dim,
 * N state. In code the B and C matrices are Bm / Cm (B alone is the batch dim).
 * Names follow tommyip/mamba2-minimal; docs/model.md §2 calls A_cumsum Acs, states S_c, A_chunkPadded tot,
 * decay_chunk Dchunk, new_states New and prev_states S_in.
 *
 *   0. discretise, pad, chunk:   X = x·dt, A = A·dt, zero-padded after discretisation;
 *                                 A_cumsum = cumsum(A) within each chunk
 *   1. intra-chunk (diagonal):    Y_diag = (C·Bᵀ ∘ exp(segsum(A))) · X                   quadratic in Q
 *   2. chunk states:              states = Bᵀ · (X ∘ decay_states),  decay_states = exp(A_last − A_cumsum)
 *   3. inter-chunk recurrence:    new_states = decay_chunk · [h0; states],  decay_chunk = exp(segsum([0; A_last]))
 *                                 → prev_states (entering each chunk) and hT           quadratic in NC
 *   4. state → output:            Y_off = (C · prev_states) ∘ exp(A_cumsum)
 * Layout: heads-major [B,G,R,NC,…] from step 0 on, so the chunk states of step 2 come out in the
 * order step 3 multiplies them in and are never transposed; states are [.., N, P] inside (step 2
 * needs no transpose of X) and [B,H,P,N] at the I/O. Only X and Y are transposed, once each.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { B, type Ctx, L } from './blocks.js';

// symbolic dims (the names are part of the exported graph's value_info)
const Lp = 'padded';
const NC = 'chunks';
const NC1 = 'chunks+1';

export interface SsdInputs {
  x: Value; // [B,L,H,P]   conv output (before ·dt)
  dt: Value; // [B,L,H]    softplus'd and clamped
  A: Value; // [H]         −exp(A_log)
  Bm: Value; // [B,L,G,N]
  Cm: Value; // [B,L,G,N]
  h0: Value; // [B,H,P,N]  initial state
}

export interface SsdOut {
  y: Value; // [B,L,H,P]   without the D skip
  hT: Value; // [B,H,P,N]  final state
}

/**
 * Masks of a T×T segment-sum as float 0/1: strictly lower (i > j) and lower inclusive (i ≥ j).
 * Multiplying by them is safe because the stable segsum is finite everywhere (docs/model.md §2.1): the
 * upper triangle of S is exactly 0, never −∞.
 */
function triMasks(g: GraphBuilder, T: number): { strict: Value; incl: Value } {
  const strict = new Float32Array(T * T);
  const incl = new Float32Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) {
      incl[i * T + j] = 1;
      if (j < i) strict[i * T + j] = 1;
    }
  }
  return { strict: g.constant('float32', [T, T], strict), incl: g.constant('float32', [T, T], incl) }; // [T,T]
}

/** The same masks for a length only known at run time (`n` int64 [1]), built from Range. */
function dynMasks(g: GraphBuilder, n: Value, dim: string): { strict: Value; incl: Value } {
  const zero = g.constant('int64', [], [0]); // []
  const one = g.constant('int64', [], [1]); // []
  const idx = op.Range(g, zero, op.Squeeze(g, n, [0]), one, dim); // [T]
  const i = op.Unsqueeze(g, idx, [1]); // [T,1]
  const j = op.Unsqueeze(g, idx, [0]); // [1,T]
  const toFloat = (b: Value) => op.Cast(g, b, 'float32', 1); // [T,T] bool → 0/1
  return { strict: toFloat(op.Greater(g, i, j)), incl: toFloat(op.GreaterOrEqual(g, i, j)) }; // [T,T]
}

/**
 * exp(segsum(s)) masked to the lower triangle, for s [...,T]: the stable construction of docs/model.md §2.1
 * (cumulative sums of masked copies, no difference of cumulative sums).
 */
function segsumExp(g: GraphBuilder, s: Value, masks: { strict: Value; incl: Value }, mask = true): Value {
  const rows = op.Mul(g, op.Unsqueeze(g, s, [-1]), masks.strict); // [...,T,T]  rows[i,j] = s_i if i > j
  const segsum = op.CumSum(g, rows, -2); // [...,T,T]  segsum[i,j] = s_{j+1}+…+s_i (0 on and above the diagonal)
  const decay = op.Exp(g, segsum); // [...,T,T]  exactly 1 above the diagonal
  return mask ? op.Mul(g, decay, masks.incl) : decay; // [...,T,T]
}

/**
 * exp(segsum) from differences of the within-chunk cumulative sums: exp(min(A_cumsum_i − A_cumsum_j, 0))
 * masked to i ≥ j. A_cumsum is non-increasing, so the lower triangle is ≤ 0 already; the Min keeps the
 * upper triangle from overflowing before the mask (inf·0 would be NaN).
 */
function segsumExpDiff(g: GraphBuilder, A_cumsum: Value, masks: { incl: Value }, mask = true): Value {
  const segsum = op.Sub(g, op.Unsqueeze(g, A_cumsum, [-1]), op.Unsqueeze(g, A_cumsum, [-2])); // [...,T,T]  A_cumsum_i − A_cumsum_j
  const decay = op.Exp(g, op.Min(g, segsum, g.constant('float32', [], [0]))); // [...,T,T]  exactly 1 above the diagonal
  return mask ? op.Mul(g, decay, masks.incl) : decay; // [...,T,T]
}

export function ssdChunked(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  const [H, P, N, G, Q] = [c.nHeads, c.headDim, c.dState, c.nGroups, c.chunkSize];
  const R = H / G;
  return g.scope('ssd', () => {
    // ---- 0. discretise, then pad L → Lp with zeros (after discretisation: docs/model.md §6.7), chunk ----
    const dtX = op.Mul(g, inp.x, op.Unsqueeze(g, inp.dt, [-1])); // [B,L,H,P]    X = x·dt
    const dtA = op.Mul(g, inp.dt, inp.A); // [B,L,H]      A·dt: log-decay per token, ≤ 0
    const seqLen = op.Shape(g, inp.dt, 1, 2); // [1]          L
    const chunkLen = g.constant('int64', [1], [Q]); // [1]          Q
    const padLen = op.Mod(g, op.Sub(g, chunkLen, op.Mod(g, seqLen, chunkLen)), chunkLen); // [1]          (Q − L mod Q) mod Q
    const pads = op.Concat(g, [g.constant('int64', [1], [0]), padLen], 0); // [2]  begin, end of axis 1
    const padded = (v: Value) => op.PadDyn(g, v, pads, [B, Lp, ...v.shape.slice(2)], [1]); // [B,Lp,…]
    const Xchunks = op.Reshape(g, padded(dtX), [B, NC, Q, G, R, P]); // [B,NC,Q,G,R,P]
    const dtAchunks = op.Reshape(g, padded(dtA), [B, NC, Q, G, R]); // [B,NC,Q,G,R]
    const Bchunks = op.Reshape(g, padded(inp.Bm), [B, NC, Q, G, N]); // [B,NC,Q,G,N]
    const Cchunks = op.Reshape(g, padded(inp.Cm), [B, NC, Q, G, N]); // [B,NC,Q,G,N]
    // heads-major layout [B,G,R,NC,…]: chunk states then come out in the order step 3 multiplies
    // them in, so no state tensor is ever transposed
    const A = op.Transpose(g, dtAchunks, [0, 3, 4, 1, 2]); // [B,G,R,NC,Q]  A·dt heads-major (mamba2-minimal's A): log-decay per token
    const A_cumsum = op.CumSum(g, A, -1); // [B,G,R,NC,Q]  within-chunk cumulative log-decay
    const X = op.Transpose(g, Xchunks, [0, 3, 4, 1, 2, 5]); // [B,G,R,NC,Q,P]
    const Bcols = op.Transpose(g, Bchunks, [0, 3, 1, 4, 2]); // [B,G,NC,N,Q]  Bᵀ: B_s as columns
    const Crows = op.Transpose(g, Cchunks, [0, 3, 1, 2, 4]); // [B,G,NC,Q,N]  C_l as rows

    // ---- 1. intra-chunk outputs (the diagonal blocks: masked attention within a chunk) ----
    const Y_diag = g.scope('diag', () => {
      // the causal mask goes on C·Bᵀ, once per group, not on the per-head decay matrix (R× fewer elements)
      const masks = triMasks(g, Q); // [Q,Q]
      const decay = ctx.tuning.segsum === 'diff' ? segsumExpDiff(g, A_cumsum, masks, false) : segsumExp(g, A, masks, false); // [B,G,R,NC,Q,Q]  decay s→l (1 above the diagonal)
      const CB = op.Unsqueeze(g, op.Mul(g, op.MatMul(g, Crows, Bcols), masks.incl), [2]); // [B,G,1,NC,Q,Q]  C_l·B_s, causal
      return op.MatMul(g, op.Mul(g, CB, decay), X); // [B,G,R,NC,Q,P]
    });

    // ---- 2. each chunk's final state, assuming a zero initial state ----
    const A_last = op.Slice(g, A_cumsum, [Q - 1], [Q], [-1]); // [B,G,R,NC,1]  each chunk's total log-decay
    const states = g.scope('states', () => {
      const decay_states = op.Exp(g, op.Sub(g, A_last, A_cumsum)); // [B,G,R,NC,Q]  decay l→chunk end (arguments ≤ 0)
      const X_decayed = op.Mul(g, X, op.Unsqueeze(g, decay_states, [-1])); // [B,G,R,NC,Q,P]
      return op.MatMul(g, op.Unsqueeze(g, Bcols, [2]), X_decayed); // [B,G,R,NC,N,P]
    });

    // ---- 3. inter-chunk recurrence: states entering each chunk, and the final state ----
    const { prev_states, hT } = g.scope('chunk_scan', () => {
      const h0 = op.Transpose(g, op.Reshape(g, inp.h0, [B, G, R, P, N]), [0, 1, 2, 4, 3]); // [B,G,R,N,P]
      const statesFlat = op.Reshape(g, states, [B, G, R, NC, N * P]); // [B,G,R,NC,N·P]
      const allStates = op.Concat(g, [op.Reshape(g, h0, [B, G, R, 1, N * P]), statesFlat], 3); // [B,G,R,NC+1,N·P]  [h0; states]
      const A_chunk = op.Squeeze(g, A_last, [-1]); // [B,G,R,NC]  chunk log-decays
      // pads written over every axis: ORT 1.30 WebGPU mis-reorders a Pad with `axes` when its transpose optimizer moves a Transpose past it
      const A_chunkPadded = op.Pad(g, A_chunk, [0, 0, 0, 1, 0, 0, 0, 0], [0, 1, 2, 3]); // [B,G,R,NC+1]  0 prepended (for h0)
      const nChunksPlus1 = op.Shape(g, A_chunkPadded, 3, 4); // [1]  NC+1
      const decay_chunk = segsumExp(g, A_chunkPadded, dynMasks(g, nChunksPlus1, NC1)); // [B,G,R,NC+1,NC+1]
      const new_states = op.MatMul(g, decay_chunk, allStates); // [B,G,R,NC+1,N·P]
      const nChunks = op.Sub(g, nChunksPlus1, g.constant('int64', [1], [1])); // [1]  NC
      const zero = g.constant('int64', [1], [0]); // [1]
      const prevFlat = op.SliceDyn(g, new_states, zero, nChunks, [3], [B, G, R, NC, N * P]); // [B,G,R,NC,N·P]  entering each chunk
      const finalFlat = op.SliceDyn(g, new_states, nChunks, nChunksPlus1, [3], [B, G, R, 1, N * P]); // [B,G,R,1,N·P]  after the last chunk
      const prev_states = op.Reshape(g, prevFlat, [B, G, R, NC, N, P]); // [B,G,R,NC,N,P]
      const finalNP = op.Reshape(g, finalFlat, [B, H, N, P]); // [B,H,N,P]
      return { prev_states, hT: op.Transpose(g, finalNP, [0, 1, 3, 2]) }; // [B,H,P,N]
    });

    // ---- 4. contribution of the entering state to each position ----
    const Y_off = g.scope('off', () => {
      const Cstate = op.MatMul(g, op.Unsqueeze(g, Crows, [2]), prev_states); // [B,G,R,NC,Q,P]  C_l · state entering the chunk
      return op.Mul(g, Cstate, op.Unsqueeze(g, op.Exp(g, A_cumsum), [-1])); // [B,G,R,NC,Q,P]
    });

    // ---- assemble: [B,G,R,NC,Q,P] → [B,Lp,H,P] → first L positions ----
    const Ychunks = op.Transpose(g, op.Add(g, Y_diag, Y_off), [0, 3, 4, 1, 2, 5]); // [B,NC,Q,G,R,P]
    const Ypadded = op.Reshape(g, Ychunks, [B, Lp, H, P]); // [B,Lp,H,P]
    const y = op.SliceDyn(g, Ypadded, g.constant('int64', [1], [0]), seqLen, [1], [B, L, H, P]); // [B,L,H,P]
    return { y, hT };
  });
}

/**
 * One token (docs/model.md §3.2 steps 4–6): h' = h·exp(dt·A) + (dt·x) ⊗ B;  y = h'·C. Everything is laid
 * out as columns of the state's I/O layout [B,H,P,N] (x [B,H,P,1], dt [B,H,1,1], B [B,H|1,1,N],
 * C [B,H|1,N,1]), so each operand is one Reshape away from the in_proj split and broadcasting does
 * the rest: no Unsqueeze/Squeeze, no reshape of the big state. B and C reach the heads by
 * broadcasting (G = 1) or by expanding the small [B,G,N] tensors (G > 1; docs/model.md §6.1).
 */
export function ssdStep(
  ctx: Ctx,
  inp: {
    x: Value; // [B,H,P,1]
    dt: Value; // [B,H,1,1]
    A: Value; // [H,1,1]
    Bm: Value; // [B,G·N] or [B,G,N]
    Cm: Value; // [B,G·N] or [B,G,N]
    h0: Value; // [B,H,P,N]
  },
): SsdOut {
  const { g, c } = ctx;
  const [H, N, G] = [c.nHeads, c.dState, c.nGroups];
  const R = H / G;
  /** Group vectors as a row [B,H|1,1,N] or a column [B,H|1,N,1]: head h reads group h / R. */
  const toHeads = (v: Value, row: boolean): Value => {
    if (G === 1) return op.Reshape(g, v, row ? [B, 1, 1, N] : [B, 1, N, 1]); // [B,1,1,N] | [B,1,N,1]
    const perGroup = op.Reshape(g, v, row ? [B, G, 1, 1, N] : [B, G, 1, N, 1]); // [B,G,1,·,·]
    const perHead = op.Expand(g, perGroup, row ? [B, G, R, 1, N] : [B, G, R, N, 1]); // [B,G,R,·,·]
    return op.Reshape(g, perHead, row ? [B, H, 1, N] : [B, H, N, 1]); // [B,H,·,·]
  };
  return g.scope('ssd', () => {
    const dA = op.Exp(g, op.Mul(g, inp.dt, inp.A)); // [B,H,1,1]   decay of this step
    const X = op.Mul(g, inp.x, inp.dt); // [B,H,P,1]              dt·x
    const h = op.Add(g, op.Mul(g, inp.h0, dA), op.Mul(g, X, toHeads(inp.Bm, true))); // [B,H,P,N]  h' = h0·dA + X ⊗ B
    const y = op.MatMul(g, h, toHeads(inp.Cm, false)); // [B,H,P,1]  h'·C
    return { y, hT: h }; // y [B,H,P,1]  hT [B,H,P,N]
  });
}
