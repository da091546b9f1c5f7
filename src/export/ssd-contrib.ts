/**
 * The `contrib` form: ONNX Runtime's com.microsoft fused ops (contrib-ops/LinearAttention,
 * contrib-ops/CausalConvWithState). The graph I/O stays as for every form; only layouts are mapped.
 * Shapes use the glossary of ssd.ts (B batch, L sequence, H heads, G groups, P head dim, N state;
 * B and C the matrices as Bm / Cm in code); Cdim conv channels, K conv width.
 *
 * SSD as gated linear attention (per head h of group g(h), state S [N,P] = our hᵀ):
 *   S_t = exp(dt_t·A_h)·S_{t−1} + B_t ⊗ (dt_t·x_t)      y_t = C_tᵀ S_t
 * so query = C [B,L,G·N], key = B [B,L,G·N], value = dt·x [B,L,H·P], decay = dt·A [B,L,H] (log-space),
 * q_num_heads = G, kv_num_heads = H ("inverse GQA" when G < H: H/G heads share one q/k head), scale 1.
 *
 *   h0 [B,H,P,N] ─T─ [B,H,N,P] ─┐
 *   C, B, dt·x, dt·A ───────────┴─ LinearAttention ─┬─ y [B,L,H·P] ─ reshape ─ [B,L,H,P]
 *                                                   └─ present [B,H,N,P] ─T─ [B,H,P,N]
 *
 * Conv: CausalConvWithState channels-first (ORT 1.29 lacks channels_last) with fused SiLU; its
 * state layout [B,Cdim,K−1] is ours, so only x and y are transposed.
 */
import * as op from '../graph/ops.js';
import { CausalConvWithState, LinearAttention } from '../graph/ops-contrib.js';
import type { Value } from '../graph/value.js';
import { B, type Ctx, L } from './blocks.js';
import type { ConvOut } from './conv.js';
import type { SsdInputs, SsdOut } from './ssd.js';

export function ssdContrib(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  const [H, P, N, G] = [c.nHeads, c.headDim, c.dState, c.nGroups];
  return g.scope('ssd', () => {
    const v = op.Reshape(g, op.Mul(g, inp.x, op.Unsqueeze(g, inp.dt, [-1])), [B, L, H * P]); // [B,L,H·P]
    const decay = op.Mul(g, inp.dt, inp.A); // [B,L,H]  log-decay
    const q = op.Reshape(g, inp.Cm, [B, L, G * N]); // [B,L,G·N]
    const k = op.Reshape(g, inp.Bm, [B, L, G * N]); // [B,L,G·N]
    const s0 = op.Transpose(g, inp.h0, [0, 1, 3, 2]); // [B,H,N,P]
    const la = LinearAttention(g, q, k, v, s0, decay, { updateRule: 'gated', qNumHeads: G, kvNumHeads: H, scale: 1 });
    const y = op.Reshape(g, la.y, [B, L, H, P]); // [B,L,H,P]
    return { y, hT: op.Transpose(g, la.state, [0, 1, 3, 2]) }; // [B,H,P,N]
  });
}

export function convContrib(
  ctx: Ctx,
  xbc: Value /* [B,L,Cdim] */,
  past: Value /* [B,Cdim,K-1] */,
  w: Value,
  b: Value | undefined,
): ConvOut {
  const { g } = ctx;
  return g.scope('conv1d', () => {
    // channels-first: ORT 1.29's schema has no `channels_last` attribute (1.30 added it)
    const xt = op.Transpose(g, xbc, [0, 2, 1]); // [B,Cdim,L]
    const r = CausalConvWithState(g, xt, w, b, past, { activation: 'silu' }); // y [B,Cdim,L]  state [B,Cdim,K-1]
    return { y: op.Transpose(g, r.y, [0, 2, 1]), state: r.state }; // y [B,L,Cdim]
  });
}

/**
 * One token through LinearAttention, in the state's own layout: with d_k = P and d_v = N the gated
 * rule S' = exp(g)·S + k ⊗ v is exactly h' = exp(dt·A)·h + (dt·x) ⊗ B on h [B,H,P,N], so the state
 * is read and written once by one kernel (the standard-op step makes four passes over it: h·dA,
 * x ⊗ B, their sum, the readout). The op's own readout qᵀS is over P, not N, so it is unused (q = k)
 * and y = h'·C is one MatMul.
 *
 *   dt·x [B,1,H·P] = k = q ─┐
 *   B per head [B,1,H·N] = v ─┼─ LinearAttention ── h' [B,H,P,N] ─ MatMul(C [B,H|1,N,1]) ─ y [B,H,P,1]
 *   dt·A [B,1,H] = decay, h ─┘
 */
export function ssdStepContrib(ctx: Ctx, inp: { x: Value; dt: Value; A: Value; Bm: Value; Cm: Value; h0: Value }): SsdOut {
  const { g, c } = ctx;
  const [H, P, N, G] = [c.nHeads, c.headDim, c.dState, c.nGroups];
  const R = H / G;
  return g.scope('ssd', () => {
    const k = op.Reshape(g, op.Mul(g, inp.x, inp.dt), [B, 1, H * P]); // [B,1,H·P]   dt·x
    const decay = op.Reshape(g, op.Mul(g, inp.dt, inp.A), [B, 1, H]); // [B,1,H]   log-decay
    const Bg = op.Reshape(g, inp.Bm, [B, G, 1, N]); // [B,G,1,N]
    const v = op.Reshape(g, op.Expand(g, Bg, [B, G, R, N]), [B, 1, H * N]); // [B,1,H·N]  head h reads group h / R
    const la = LinearAttention(g, k, k, v, inp.h0, decay, { updateRule: 'gated', qNumHeads: H, kvNumHeads: H, scale: 1 });
    const Cg = op.Reshape(g, inp.Cm, G === 1 ? [B, 1, N, 1] : [B, G, 1, N, 1]); // [B,1,N,1] | [B,G,1,N,1]
    const Ch = G === 1 ? Cg : op.Reshape(g, op.Expand(g, Cg, [B, G, R, N, 1]), [B, H, N, 1]); // [B,H|1,N,1]
    return { y: op.MatMul(g, la.state, Ch), hT: la.state }; // y [B,H,P,1]  hT [B,H,P,N]
  });
}

/** One token through CausalConvWithState (conv, bias, SiLU and the new window in one node). */
export function causalConvStepContrib(
  ctx: Ctx,
  xbc: Value /* [B,Cdim] */,
  past: Value /* [B,Cdim,K-1] */,
  w: Value,
  b: Value | undefined,
): ConvOut {
  const { g, c } = ctx;
  return g.scope('conv1d', () => {
    const x = op.Reshape(g, xbc, [B, c.convDim, 1]); // [B,Cdim,1]   channels-first, one column
    const r = CausalConvWithState(g, x, w, b, past, { activation: 'silu' }); // y [B,Cdim,1]  state [B,Cdim,K-1]
    return { y: op.Reshape(g, r.y, [B, c.convDim]), state: r.state }; // y [B,Cdim]
  });
}
