/**
 * The Mamba-2 mixer (docs/model.md §1.2), for a sequence (chunked SSD) and for one token (recurrent step).
 * Ref: state-spaces/mamba `Mamba2.forward` / `Mamba2.step`; tommyip/mamba2-minimal.
 * Glossary: B batch, L sequence, D d_model, DI d_ssm, F in_proj width, Cdim conv channels,
 * H heads, P head dim, G groups, N state.
 */
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { B, type Ctx, gatedRmsNorm, L, linear, silu } from './blocks.js';
import { causalConvStep } from './conv.js';
import type { SequenceForm } from './forms.js';
import { ssdStep } from './ssd.js';
import { causalConvStepContrib, ssdStepContrib } from './ssd-contrib.js';
import type { LayerWeights } from './weights.js';

export interface LayerState {
  conv: Value; // [B,Cdim,K-1]
  ssm: Value; // [B,H,P,N]
}

/**
 * dt = clamp(softplus(dt + dt_bias), dt_limit) for `dt` that already holds dt + dt_bias (inProj adds
 * the bias); softplus is the identity above 20 (docs/model.md §6.5). `stableSoftplus`: the runtime's Softplus
 * is the stable x + log1p(e⁻ˣ) form (ONNX Runtime's CPU, CUDA and WebGPU kernels; mixer-dt.test.ts
 * checks CPU and WebGPU, CUDA was checked on an H200), so softplus(x) and x are the same float
 * above 20 and the explicit Where is two dispatches per layer for nothing. Without it (standard-op
 * graphs for any runtime) a naive log(1 + eˣ) would overflow, so the Where stays.
 */
export function dtPipeline(ctx: Ctx, v: Value, stableSoftplus = false): Value {
  const { g, c } = ctx;
  return g.scope('dt', () => {
    const sp = stableSoftplus ? op.Softplus(g, v) : op.Where(g, op.Greater(g, v, g.constant('float32', [], [20])), v, op.Softplus(g, v)); // [...,H]
    const [lo, hi] = c.dtLimit;
    let out = sp;
    if (lo > 0) out = op.Max(g, out, g.constant('float32', [], [lo]));
    if (Number.isFinite(hi)) out = op.Min(g, out, g.constant('float32', [], [hi]));
    return out; // [...,H]
  });
}

/**
 * in_proj with dt_bias folded into its bias (under the dt columns; weights only, so ORT folds it
 * into one initializer). A dense fp32 Gemm adds it for free: one Add fewer per layer. Other dtypes
 * add the bias after the product, as before but over [..,F] instead of [..,H].
 */
function inProj(ctx: Ctx, w: LayerWeights, u: Value): Value {
  const { g, c } = ctx;
  const W = w.inProj;
  const F = W.kind === 'dense' ? (W.w.shape[0] as number) : W.N;
  const H = c.nHeads;
  const pad = op.Expand(g, g.constant('float32', [1], [0]), [F - H]); // [F−H]  zeros
  const dtCols = op.Concat(g, [pad, w.dtBias], 0); // [F]   dt_bias under the dt columns (the last H)
  const bias = w.inProjBias ? op.Add(g, w.inProjBias, dtCols) : dtCols; // [F]
  return linear(ctx, 'in_proj', u, W, bias); // [..,F]
}

/** A = −exp(A_log), in fp32 (docs/model.md §6.6). */
const decayRate = (ctx: Ctx, aLog: Value): Value => op.Neg(ctx.g, op.Exp(ctx.g, aLog)); // [H]

/** D as [H,1] (per head) or [H,P] (D_has_hdim), to broadcast over [...,H,P]. */
const skipWeight = (ctx: Ctx, D: Value): Value => op.Reshape(ctx.g, D, [ctx.c.nHeads, ctx.c.dHasHdim ? ctx.c.headDim : 1]);

/** Splits the in_proj output into [z0, x0,] z, xBC, dt (docs/model.md §1.2 step 2). */
function splitInProj(ctx: Ctx, zxbcdt: Value): { z0?: Value; x0?: Value; z: Value; xbc: Value; dt: Value } {
  const { g, c } = ctx;
  if (c.dMlp === 0) {
    const [z, xbc, dt] = op.Split(g, zxbcdt, [c.dSsm, c.convDim, c.nHeads], -1);
    return { z: z!, xbc: xbc!, dt: dt! };
  }
  const [z0, x0, z, xbc, dt] = op.Split(g, zxbcdt, [c.dMlp, c.dMlp, c.dSsm, c.convDim, c.nHeads], -1);
  return { z0, x0, z: z!, xbc: xbc!, dt: dt! };
}

/** Gated norm, the non-SSM branch (silu(z0)·x0, first: docs/model.md §6.15) and out_proj. */
function finish(ctx: Ctx, w: LayerWeights, y: Value, s: ReturnType<typeof splitInProj>): Value {
  const { g } = ctx;
  let out = gatedRmsNorm(ctx, y, s.z, w.gatedNorm); // [...,DI]
  if (s.z0 && s.x0) out = op.Concat(g, [op.Mul(g, silu(g, s.z0), s.x0), out], -1); // [...,d_inner]
  return linear(ctx, 'out_proj', out, w.outProj, w.outProjBias); // [...,D]
}

/** Mixer over L ≥ 1 tokens, continuing `state`. */
export function mamba2Mixer(
  ctx: Ctx,
  w: LayerWeights,
  u: Value /* [B,L,D] */,
  state: LayerState,
  form: SequenceForm,
): { y: Value; state: LayerState } {
  const { g, c } = ctx;
  const [H, P, G, N] = [c.nHeads, c.headDim, c.nGroups, c.dState];
  return g.scope('mixer', () => {
    const zxbcdt = inProj(ctx, w, u); // [B,L,F]   dt_bias included
    const s = splitInProj(ctx, zxbcdt);
    const conv = form.conv(ctx, s.xbc, state.conv, w.conv, w.convBias); // y [B,L,Cdim]  state [B,Cdim,K-1]
    const [x, Bm, Cm] = op.Split(g, conv.y, [c.dSsm, G * N, G * N], -1);
    const x4 = op.Reshape(g, x!, [B, L, H, P]); // [B,L,H,P]
    const ssm = form.ssd(ctx, {
      x: x4,
      dt: dtPipeline(ctx, s.dt), // [B,L,H]
      A: decayRate(ctx, w.aLog), // [H]
      Bm: op.Reshape(g, Bm!, [B, L, G, N]), // [B,L,G,N]
      Cm: op.Reshape(g, Cm!, [B, L, G, N]), // [B,L,G,N]
      h0: state.ssm, // [B,H,P,N]
    });
    const yD = op.Add(g, ssm.y, op.Mul(g, x4, skipWeight(ctx, w.D))); // [B,L,H,P]  D uses x, not dt·x (§6.9)
    const y = finish(ctx, w, op.Reshape(g, yD, [B, L, c.dSsm]), s); // [B,L,D]
    return { y, state: { conv: conv.state, ssm: ssm.hT } };
  });
}

/** Mixer for one token: u [B,D]. */
export function mamba2MixerStep(ctx: Ctx, w: LayerWeights, u: Value /* [B,D] */, state: LayerState): { y: Value; state: LayerState } {
  const { g, c } = ctx;
  const [H, P, G, N] = [c.nHeads, c.headDim, c.nGroups, c.dState];
  return g.scope('mixer', () => {
    const zxbcdt = inProj(ctx, w, u); // [B,F]   dt_bias included
    const s = splitInProj(ctx, zxbcdt);
    const conv = (ctx.tuning.step !== 'ops' ? causalConvStepContrib : causalConvStep)(ctx, s.xbc, state.conv, w.conv, w.convBias); // y [B,Cdim]
    const [x, Bm, Cm] = op.Split(g, conv.y, [c.dSsm, G * N, G * N], -1); // [B,DI] [B,G·N] [B,G·N]
    const xCol = op.Reshape(g, x!, [B, H, P, 1]); // [B,H,P,1]
    const ssm = (ctx.tuning.step !== 'ops' ? ssdStepContrib : ssdStep)(ctx, {
      x: xCol,
      dt: op.Reshape(g, dtPipeline(ctx, s.dt, ctx.tuning.step !== 'ops'), [B, H, 1, 1]), // [B,H,1,1]
      A: op.Reshape(g, decayRate(ctx, w.aLog), [H, 1, 1]), // [H,1,1]   weights only: folded by ORT
      Bm: Bm!,
      Cm: Cm!,
      h0: state.ssm, // [B,H,P,N]
    });
    const Dcol = op.Reshape(g, w.D, [H, c.dHasHdim ? P : 1, 1]); // [H,P|1,1]
    const yD = op.Add(g, ssm.y, op.Mul(g, xCol, Dcol)); // [B,H,P,1]
    const y = finish(ctx, w, op.Reshape(g, yD, [B, c.dSsm]), s); // [B,D]
    return { y, state: { conv: conv.state, ssm: ssm.hT } };
  });
}
