/**
 * One Mamba-2 mixer (docs/model.md §1.2 steps 1–10), with incoming and outgoing per-layer state (§3), so
 * that a fresh prefill, a continuation and a one-token step are the same function.
 */
import type { Mamba2Config } from '../package/config.js';
import { aFromALog, causalConv, dtPipeline, gatedRmsNorm, linear, silu, splitLast } from './blocks.js';
import { ssdSequential } from './ssd.js';
import { expectShape, type FloatArray, type Tensor } from './tensor.js';

/** Flat weights by checkpoint key (HF or mamba_ssm names; see docs/model.md §4.1). */
export type Weights = Readonly<Record<string, FloatArray>>;

export interface LayerState {
  /** [B, convDim, K−1]: last K−1 pre-conv xBC inputs, oldest first. */
  readonly conv: Tensor;
  /** [B, H, P, N]. */
  readonly ssm: Tensor;
}

export interface MixerWeights {
  readonly inProj: FloatArray; // (F, D)
  readonly inProjBias?: FloatArray; // (F)
  readonly convWeight: FloatArray; // (convDim, 1, K)
  readonly convBias?: FloatArray; // (convDim)
  readonly dtBias: FloatArray; // (H)
  readonly aLog: FloatArray; // (H)
  readonly D: FloatArray; // (H) or (H·P)
  readonly normWeight?: FloatArray; // (dSsm), absent when rmsNorm is false
  readonly outProj: FloatArray; // (D, DI)
  readonly outProjBias?: FloatArray; // (D)
}

/** Look up a weight and check its element count; the error names the key. */
export function requireWeight(weights: Weights, key: string, n: number): FloatArray {
  const w = weights[key];
  if (!w) throw new RangeError(`weights: missing '${key}' (expected ${n} elements)`);
  if (w.length !== n) throw new RangeError(`weights['${key}']: expected ${n} elements, got ${w.length}`);
  return w;
}

/** The tensors of layer `layer` (keys `backbone.layers.{i}.mixer.*`, the same in both formats). */
export function mixerWeights(weights: Weights, c: Mamba2Config, layer: number): MixerWeights {
  const p = `backbone.layers.${layer}.mixer.`;
  const get = (name: string, n: number): FloatArray => requireWeight(weights, p + name, n);
  return {
    inProj: get('in_proj.weight', c.dInProj * c.dModel),
    inProjBias: c.bias ? get('in_proj.bias', c.dInProj) : undefined,
    convWeight: get('conv1d.weight', c.convDim * c.dConv),
    convBias: c.convBias ? get('conv1d.bias', c.convDim) : undefined,
    dtBias: get('dt_bias', c.nHeads),
    aLog: get('A_log', c.nHeads),
    D: get('D', c.dHasHdim ? c.nHeads * c.headDim : c.nHeads),
    normWeight: c.rmsNorm ? get('norm.weight', c.dSsm) : undefined,
    outProj: get('out_proj.weight', c.dModel * c.dInner),
    outProjBias: c.bias ? get('out_proj.bias', c.dModel) : undefined,
  };
}

export interface MixerResult {
  /** [B, L, D] */
  readonly y: Tensor<Float64Array>;
  readonly state: LayerState;
}

/** u [B, L, D] (already RMS-normalised by the block) → mixer output [B, L, D] and the new state. */
export function mamba2Mixer(c: Mamba2Config, w: MixerWeights, u: Tensor, state?: LayerState): MixerResult {
  const [b, l] = u.shape as [number, number, number];
  expectShape(u, [b, l, c.dModel], 'mamba2Mixer(u)');
  const { nHeads: H, headDim: P, nGroups: G, dState: N, dSsm, dMlp } = c;
  if (state) {
    expectShape(state.conv, [b, c.convDim, c.dConv - 1], 'mamba2Mixer(state.conv)');
    expectShape(state.ssm, [b, H, P, N], 'mamba2Mixer(state.ssm)');
  }
  // 1–2. in_proj, split [z0, x0, z, xBC, dt]
  const zxbcdt = linear(u, w.inProj, c.dInProj, w.inProjBias); // [B,L,F]
  const [z0, x0, z, xbc, dtRaw] = splitLast(zxbcdt, [dMlp, dMlp, dSsm, c.convDim, H]) as [
    Tensor<Float64Array>,
    Tensor<Float64Array>,
    Tensor<Float64Array>,
    Tensor<Float64Array>,
    Tensor<Float64Array>,
  ];
  // 3. causal depthwise conv over x, B, C together, then SiLU
  const conv = causalConv(xbc, w.convWeight, c.dConv, w.convBias, state?.conv, 'silu'); // [B,L,convDim]
  // 4. split x, B, C
  const [xs, bm, cm] = splitLast(conv.y, [dSsm, G * N, G * N]) as [Tensor<Float64Array>, Tensor<Float64Array>, Tensor<Float64Array>];
  const x4: Tensor = { data: xs.data, shape: [b, l, H, P] };
  // 5–7. A, dt, SSD, + D·x
  const A = aFromALog(w.aLog);
  const dt = dtPipeline(dtRaw, w.dtBias, c.dtLimit); // [B,L,H]
  const ssd = ssdSequential(x4, dt, A, { data: bm.data, shape: [b, l, G, N] }, { data: cm.data, shape: [b, l, G, N] }, state?.ssm);
  const y = ssd.y.data; // [B,L,H,P] ≡ [B,L,dSsm]
  for (let i = 0; i < y.length; i++) {
    const hp = i % (H * P);
    const d = c.dHasHdim ? w.D[hp]! : w.D[Math.floor(hp / P)]!;
    y[i] = y[i]! + d * xs.data[i]!;
  }
  const yT: Tensor<Float64Array> = { data: y, shape: [b, l, dSsm] };
  // 8. gated RMSNorm (grouped), or plain gate when rmsnorm is off
  let gated: Tensor<Float64Array>;
  if (w.normWeight) {
    gated = gatedRmsNorm(yT, z, w.normWeight, { nGroups: G, eps: c.normEps, normBeforeGate: c.normBeforeGate });
  } else {
    gated = { data: y.map((v, i) => v * silu(z.data[i]!)), shape: [b, l, dSsm] };
  }
  // 9. non-SSM channels first: concat(silu(z0)·x0, y)
  let full = gated;
  if (dMlp > 0) {
    const di = c.dInner;
    const data = new Float64Array(b * l * di);
    for (let r = 0; r < b * l; r++) {
      for (let i = 0; i < dMlp; i++) data[r * di + i] = silu(z0.data[r * dMlp + i]!) * x0.data[r * dMlp + i]!;
      data.set(gated.data.subarray(r * dSsm, (r + 1) * dSsm), r * di + dMlp);
    }
    full = { data, shape: [b, l, di] };
  }
  // 10. out_proj
  const out = linear(full, w.outProj, c.dModel, w.outProjBias);
  return { y: out, state: { conv: conv.state, ssm: ssd.hT } };
}
