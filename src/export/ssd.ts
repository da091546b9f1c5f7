/**
 * SSD as the chunked quadratic/linear dual form, in MatMul ops (spec §2; Dao & Gu 2024, §6;
 * tommyip/mamba2-minimal `ssd`). Group-aware layout (spec §2.6): heads are split as H = G·R with
 * R = H/G, so B and C are never copied per head.
 *
 * Glossary: B batch, L sequence, Lp L padded to a multiple of Q, Q chunk, C = Lp/Q chunks,
 * H heads, G groups, R = H/G heads per group, P head dim, N state.
 *
 *   0. discretise, pad, chunk:   X = x·dt, a = A·dt, zero-padded after discretisation
 *   1. intra-chunk (diagonal):    Y_diag = (C·Bᵀ ∘ exp(segsum(a))) · X          quadratic in Q
 *   2. chunk states:              S_c = Bᵀ · (X ∘ exp(Acs_last − Acs))
 *   3. inter-chunk recurrence:    S_in = exp(segsum(chunk decays)) · [h0; S_c]   quadratic in C
 *   4. state → output:            Y_off = (C · S_in) ∘ exp(Acs)
 * Layout: heads-major [B,G,R,C,…] from step 0 on, so the chunk states of step 2 come out in the
 * order step 3 multiplies them in and are never transposed; states are [.., N, P] inside (step 2
 * needs no transpose of X) and [B,H,P,N] at the I/O. Only X and Y are transposed, once each.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import { END } from '../graph/ops-tensor.js';
import type { Value } from '../graph/value.js';
import { B, type Ctx, L } from './blocks.js';

const Lp = 'padded';
const C = 'chunks';
const C1 = 'chunks+1';

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
 * Multiplying by them is safe because the stable segsum is finite everywhere (spec §2.1): the
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
  return { strict: g.constant('float32', [T, T], strict), incl: g.constant('float32', [T, T], incl) };
}

/** The same masks for a length only known at run time (`n` int64 [1]), built from Range. */
function dynMasks(g: GraphBuilder, n: Value, dim: string): { strict: Value; incl: Value } {
  const zero = g.constant('int64', [], [0]);
  const one = g.constant('int64', [], [1]);
  const idx = op.Range(g, zero, op.Squeeze(g, n, [0]), one, dim); // [T]
  const i = op.Unsqueeze(g, idx, [1]); // [T,1]
  const j = op.Unsqueeze(g, idx, [0]); // [1,T]
  const f = (b: Value) => op.Cast(g, b, 'float32', 1);
  return { strict: f(op.Greater(g, i, j)), incl: f(op.GreaterOrEqual(g, i, j)) }; // [T,T]
}

/**
 * exp(segsum(s)) masked to the lower triangle, for s [...,T]: the stable construction of spec §2.1
 * (cumulative sums of masked copies, no difference of cumulative sums).
 */
function segsumExp(g: GraphBuilder, s: Value, masks: { strict: Value; incl: Value }, mask = true): Value {
  const r = op.Mul(g, op.Unsqueeze(g, s, [-1]), masks.strict); // [...,T,T]  r[i,j] = s_i if i > j
  const S = op.CumSum(g, r, -2); // [...,T,T]  S[i,j] = s_{j+1}+…+s_i (0 on and above the diagonal)
  const E = op.Exp(g, S); // [...,T,T]  exactly 1 above the diagonal
  return mask ? op.Mul(g, E, masks.incl) : E; // [...,T,T]
}

/**
 * exp(segsum) from differences of the within-chunk cumulative sums: exp(min(Acs_i − Acs_j, 0))
 * masked to i ≥ j. Acs is non-increasing, so the lower triangle is ≤ 0 already; the Min keeps the
 * upper triangle from overflowing before the mask (inf·0 would be NaN).
 */
function segsumExpDiff(g: GraphBuilder, acs: Value, masks: { incl: Value }, mask = true): Value {
  const d = op.Sub(g, op.Unsqueeze(g, acs, [-1]), op.Unsqueeze(g, acs, [-2])); // [...,T,T]  Acs_i − Acs_j
  const E = op.Exp(g, op.Min(g, d, g.constant('float32', [], [0]))); // [...,T,T]  exactly 1 above the diagonal
  return mask ? op.Mul(g, E, masks.incl) : E; // [...,T,T]
}

export function ssdChunked(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  const [H, P, N, G, Q] = [c.nHeads, c.headDim, c.dState, c.nGroups, c.chunkSize];
  const R = H / G;
  return g.scope('ssd', () => {
    // ---- 0. discretise, then pad L → Lp with zeros (after discretisation: spec §6.7), chunk ----
    const X0 = op.Mul(g, inp.x, op.Unsqueeze(g, inp.dt, [-1])); // [B,L,H,P]
    const a0 = op.Mul(g, inp.dt, inp.A); // [B,L,H]      log-decay per token, ≤ 0
    const len = op.Shape(g, inp.dt, 1, 2); // [1]          L
    const q = g.constant('int64', [1], [Q]);
    const pad = op.Mod(g, op.Sub(g, q, op.Mod(g, len, q)), q); // [1]          (Q − L mod Q) mod Q
    const pads = op.Concat(g, [g.constant('int64', [1], [0]), pad], 0); // [2]  begin, end of axis 1
    const padded = (v: Value) => op.PadDyn(g, v, pads, [B, Lp, ...v.shape.slice(2)], [1]);
    const X = op.Reshape(g, padded(X0), [B, C, Q, G, R, P]); // [B,C,Q,G,R,P]
    const a = op.Reshape(g, padded(a0), [B, C, Q, G, R]); // [B,C,Q,G,R]
    const Bm = op.Reshape(g, padded(inp.Bm), [B, C, Q, G, N]); // [B,C,Q,G,N]
    const Cm = op.Reshape(g, padded(inp.Cm), [B, C, Q, G, N]); // [B,C,Q,G,N]
    // heads-major layout [B,G,R,C,…]: chunk states then come out in the order step 3 multiplies
    // them in, so no state tensor is ever transposed
    const aT = op.Transpose(g, a, [0, 3, 4, 1, 2]); // [B,G,R,C,Q]
    const Acs = op.CumSum(g, aT, -1); // [B,G,R,C,Q]  within-chunk cumulative decay
    const Xh = op.Transpose(g, X, [0, 3, 4, 1, 2, 5]); // [B,G,R,C,Q,P]
    const BmT = op.Transpose(g, Bm, [0, 3, 1, 4, 2]); // [B,G,C,N,Q]
    const CmG = op.Transpose(g, Cm, [0, 3, 1, 2, 4]); // [B,G,C,Q,N]

    // ---- 1. intra-chunk outputs (the diagonal blocks: masked attention within a chunk) ----
    const Yd = g.scope('diag', () => {
      // the causal mask goes on C·Bᵀ, once per group, not on the per-head decay matrix (R× fewer elements)
      const masks = triMasks(g, Q);
      const E = ctx.tuning.segsum === 'diff' ? segsumExpDiff(g, Acs, masks, false) : segsumExp(g, aT, masks, false); // [B,G,R,C,Q,Q]  decay s→l (1 above the diagonal)
      const CB = op.Unsqueeze(g, op.Mul(g, op.MatMul(g, CmG, BmT), masks.incl), [2]); // [B,G,1,C,Q,Q]  C_l·B_s, causal
      return op.MatMul(g, op.Mul(g, CB, E), Xh); // [B,G,R,C,Q,P]
    });

    // ---- 2. each chunk's final state, assuming a zero initial state ----
    const last = op.Slice(g, Acs, [Q - 1], [Q], [-1]); // [B,G,R,C,1]
    const Sc = g.scope('states', () => {
      const decay = op.Exp(g, op.Sub(g, last, Acs)); // [B,G,R,C,Q]  (arguments ≤ 0)
      const Xd = op.Mul(g, Xh, op.Unsqueeze(g, decay, [-1])); // [B,G,R,C,Q,P]
      return op.MatMul(g, op.Unsqueeze(g, BmT, [2]), Xd); // [B,G,R,C,N,P]
    });

    // ---- 3. inter-chunk recurrence: states entering each chunk, and the final state ----
    const { Sin, hT } = g.scope('chunk_scan', () => {
      const h0 = op.Transpose(g, op.Reshape(g, inp.h0, [B, G, R, P, N]), [0, 1, 2, 4, 3]); // [B,G,R,N,P]
      const Scg = op.Reshape(g, Sc, [B, G, R, C, N * P]); // [B,G,R,C,N·P]
      const Sall = op.Concat(g, [op.Reshape(g, h0, [B, G, R, 1, N * P]), Scg], 3); // [B,G,R,C+1,N·P]
      const tot = op.Squeeze(g, last, [-1]); // [B,G,R,C]  chunk decays
      // pads written over every axis: ORT 1.30 WebGPU mis-reorders a Pad with `axes` when its transpose optimizer moves a Transpose past it
      const totP = op.Pad(g, tot, [0, 0, 0, 1, 0, 0, 0, 0], [0, 1, 2, 3]); // [B,G,R,C+1]
      const n = op.Shape(g, totP, 3, 4); // [1] C+1
      const Dchunk = segsumExp(g, totP, dynMasks(g, n, C1)); // [B,G,R,C+1,C+1]
      const New = op.MatMul(g, Dchunk, Sall); // [B,G,R,C+1,N·P]
      const nC = op.Sub(g, n, g.constant('int64', [1], [1])); // [1] C
      const zero = g.constant('int64', [1], [0]);
      const SinG = op.SliceDyn(g, New, zero, nC, [3], [B, G, R, C, N * P]); // [B,G,R,C,N·P]
      const hLast = op.SliceDyn(g, New, nC, n, [3], [B, G, R, 1, N * P]); // [B,G,R,1,N·P]
      const Sin = op.Reshape(g, SinG, [B, G, R, C, N, P]); // [B,G,R,C,N,P]
      const hNP = op.Reshape(g, hLast, [B, H, N, P]); // [B,H,N,P]
      return { Sin, hT: op.Transpose(g, hNP, [0, 1, 3, 2]) }; // [B,H,P,N]
    });

    // ---- 4. contribution of the entering state to each position ----
    const Yo = g.scope('off', () => {
      const CS = op.MatMul(g, op.Unsqueeze(g, CmG, [2]), Sin); // [B,G,R,C,Q,P]
      return op.Mul(g, CS, op.Unsqueeze(g, op.Exp(g, Acs), [-1])); // [B,G,R,C,Q,P]
    });

    // ---- assemble: [B,G,R,C,Q,P] → [B,Lp,H,P] → first L positions ----
    const Y = op.Transpose(g, op.Add(g, Yd, Yo), [0, 3, 4, 1, 2, 5]); // [B,C,Q,G,R,P]
    const Yp = op.Reshape(g, Y, [B, Lp, H, P]); // [B,Lp,H,P]
    const y = op.SliceDyn(g, Yp, g.constant('int64', [1], [0]), len, [1], [B, L, H, P]); // [B,L,H,P]
    return { y, hT };
  });
}

/**
 * One token (spec §3.2 steps 4–6): h' = h·exp(dt·A) + (dt·x) ⊗ B;  y = h'·C. Everything is laid
 * out as columns of the state's I/O layout [B,H,P,N] (x [B,H,P,1], dt [B,H,1,1], B [B,H|1,1,N],
 * C [B,H|1,N,1]), so each operand is one Reshape away from the in_proj split and broadcasting does
 * the rest: no Unsqueeze/Squeeze, no reshape of the big state. B and C reach the heads by
 * broadcasting (G = 1) or by expanding the small [B,G,N] tensors (G > 1; spec §6.1).
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
    const one = op.Reshape(g, v, row ? [B, G, 1, 1, N] : [B, G, 1, N, 1]); // [B,G,1,·,·]
    const all = op.Expand(g, one, row ? [B, G, R, 1, N] : [B, G, R, N, 1]); // [B,G,R,·,·]
    return op.Reshape(g, all, row ? [B, H, 1, N] : [B, H, N, 1]); // [B,H,·,·]
  };
  return g.scope('ssd', () => {
    const dA = op.Exp(g, op.Mul(g, inp.dt, inp.A)); // [B,H,1,1]   decay of this step
    const X = op.Mul(g, inp.x, inp.dt); // [B,H,P,1]              dt·x
    const h1 = op.Add(g, op.Mul(g, inp.h0, dA), op.Mul(g, X, toHeads(inp.Bm, true))); // [B,H,P,N]
    const y = op.MatMul(g, h1, toHeads(inp.Cm, false)); // [B,H,P,1]
    return { y, hT: h1 }; // y [B,H,P,1]  hT [B,H,P,N]
  });
}

export { END };
