/**
 * Elementwise and per-layer building blocks of the Mamba-2 reference, written straight from
 * docs/model.md §1.2 (step numbers below) and §3. All arithmetic is float64; inputs may
 * be float32 or float64. Shapes in comments use the letters of docs/model.md §0: B batch, L seq, D d_model,
 * DI d_inner, H heads, P head dim, N d_state, G groups, K d_conv, C channels.
 */
import { expectLength, numel, type FloatArray, type Tensor } from './tensor.js';

/** softplus(x) = log(1 + eˣ), and x itself above this (torch's default threshold; docs/model.md §6.5). */
const SOFTPLUS_THRESHOLD = 20;

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function softplus(x: number): number {
  return x > SOFTPLUS_THRESHOLD ? x : Math.log1p(Math.exp(x));
}

/** `x·Wᵀ (+ b)` over the last axis. x [..., IN]; W (OUT, IN) row-major (torch Linear); b (OUT). */
export function linear(x: Tensor, weight: FloatArray, outFeatures: number, bias?: FloatArray): Tensor<Float64Array> {
  const inFeatures = x.shape[x.shape.length - 1];
  if (inFeatures === undefined) throw new RangeError('linear(x): expected at least one axis, got a scalar');
  expectLength(weight, outFeatures * inFeatures, `linear(weight) for ${outFeatures}×${inFeatures}`);
  if (bias) expectLength(bias, outFeatures, 'linear(bias)');
  const rows = numel(x.shape) / inFeatures;
  const out = new Float64Array(rows * outFeatures);
  for (let r = 0; r < rows; r++) {
    const xo = r * inFeatures;
    for (let o = 0; o < outFeatures; o++) {
      const wo = o * inFeatures;
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inFeatures; i++) s += x.data[xo + i]! * weight[wo + i]!;
      out[r * outFeatures + o] = s;
    }
  }
  return { data: out, shape: [...x.shape.slice(0, -1), outFeatures] };
}

/** RMSNorm over the last axis: `x · (mean(x²) + eps)^(−½) · w` (docs/model.md §1.1; w multiplies directly). */
export function rmsNorm(x: Tensor, weight: FloatArray, eps: number): Tensor<Float64Array> {
  const d = x.shape[x.shape.length - 1] ?? 0;
  expectLength(weight, d, 'rmsNorm(weight)');
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length; r += d) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x.data[r + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[r + i] = x.data[r + i]! * inv * weight[i]!;
  }
  return { data: out, shape: [...x.shape] };
}

export interface GatedNormOptions {
  /** G: the width is normalised in G groups of width/G channels each (docs/model.md §6.2). */
  readonly nGroups: number;
  readonly eps: number;
  /** false (every published model): RMSNorm(y·silu(z))·w; true: RMSNorm(y)·w·silu(z). */
  readonly normBeforeGate?: boolean;
}

/** Gated, grouped RMSNorm of the mixer (§1.2 step 8). y, z [..., W]; weight (W). */
export function gatedRmsNorm(y: Tensor, z: Tensor, weight: FloatArray, opts: GatedNormOptions): Tensor<Float64Array> {
  const w = y.shape[y.shape.length - 1] ?? 0;
  if (z.data.length !== y.data.length) {
    throw new RangeError(`gatedRmsNorm(z): expected shape [${y.shape.join(', ')}], got [${z.shape.join(', ')}]`);
  }
  expectLength(weight, w, 'gatedRmsNorm(weight)');
  if (!Number.isInteger(opts.nGroups) || opts.nGroups < 1 || w % opts.nGroups !== 0) {
    throw new RangeError(`gatedRmsNorm(nGroups): expected a divisor of the width ${w}, got ${opts.nGroups}`);
  }
  const gs = w / opts.nGroups;
  const out = new Float64Array(y.data.length);
  for (let r = 0; r < y.data.length; r += w) {
    for (let i = 0; i < w; i++) {
      const v = y.data[r + i]!;
      out[r + i] = opts.normBeforeGate ? v : v * silu(z.data[r + i]!);
    }
    for (let g = 0; g < opts.nGroups; g++) {
      const s = r + g * gs;
      let ss = 0;
      for (let i = 0; i < gs; i++) ss += out[s + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / gs + opts.eps);
      for (let i = 0; i < gs; i++) out[s + i] = out[s + i]! * inv * weight[g * gs + i]!;
    }
    if (opts.normBeforeGate) for (let i = 0; i < w; i++) out[r + i] = out[r + i]! * silu(z.data[r + i]!);
  }
  return { data: out, shape: [...y.shape] };
}

export interface CausalConvResult {
  /** [B, L, C] after the activation. */
  readonly y: Tensor<Float64Array>;
  /** [B, C, K−1]: the last K−1 pre-conv inputs, oldest first (docs/model.md §3.1, minus the unused oldest column). */
  readonly state: Tensor<Float64Array>;
}

/**
 * Depthwise causal conv over time (§1.2 step 3, §3.2):
 * `y[t,c] = act(b[c] + Σ_k w[c,k]·x[t−K+1+k, c])`, where inputs before t = 0 come from `state`
 * (K−1 columns, oldest first; zeros when absent, i.e. a fresh sequence).
 * x [B,L,C]; weight (C,1,K) or (C,K) flat; bias (C) or undefined; state [B,C,K−1].
 */
export function causalConv(
  x: Tensor,
  weight: FloatArray,
  kernel: number,
  bias?: FloatArray,
  state?: Tensor,
  activation: 'silu' | 'none' = 'silu',
): CausalConvResult {
  const [b, l, c] = x.shape;
  if (x.shape.length !== 3 || b === undefined || l === undefined || c === undefined) {
    throw new RangeError(`causalConv(x): expected [B, L, C], got [${x.shape.join(', ')}]`);
  }
  const k = kernel;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`causalConv(kernel): expected an integer ≥ 1, got ${k}`);
  expectLength(weight, c * k, 'causalConv(weight) (C·K)');
  if (bias) expectLength(bias, c, 'causalConv(bias)');
  const km1 = k - 1;
  if (state && (state.shape.length !== 3 || state.shape[0] !== b || state.shape[1] !== c || state.shape[2] !== km1)) {
    throw new RangeError(`causalConv(state): expected [${b}, ${c}, ${km1}], got [${state.shape.join(', ')}]`);
  }
  // input at time s (may be negative: then a state column), batch i, channel ch
  const at = (i: number, s: number, ch: number): number =>
    s >= 0 ? x.data[(i * l + s) * c + ch]! : state ? state.data[(i * c + ch) * km1 + km1 + s]! : 0;
  const y = new Float64Array(b * l * c);
  const next = new Float64Array(b * c * km1);
  for (let i = 0; i < b; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let t = 0; t < l; t++) {
        let s = bias ? bias[ch]! : 0;
        for (let j = 0; j < k; j++) s += weight[ch * k + j]! * at(i, t - km1 + j, ch);
        y[(i * l + t) * c + ch] = activation === 'silu' ? silu(s) : s;
      }
      for (let j = 0; j < km1; j++) next[(i * c + ch) * km1 + j] = at(i, l - km1 + j, ch);
    }
  }
  return { y: { data: y, shape: [b, l, c] }, state: { data: next, shape: [b, c, km1] } };
}

/**
 * dt pipeline (§1.2 step 6, §6.5): `clamp(softplus(dt + dt_bias), lo, hi)`, the same in every path.
 * dtRaw [B,L,H]; dtBias (H).
 */
export function dtPipeline(dtRaw: Tensor, dtBias: FloatArray, limit: readonly [number, number]): Tensor<Float64Array> {
  const h = dtRaw.shape[dtRaw.shape.length - 1] ?? 0;
  expectLength(dtBias, h, 'dtPipeline(dtBias)');
  const [lo, hi] = limit;
  const out = new Float64Array(dtRaw.data.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.min(Math.max(softplus(dtRaw.data[i]! + dtBias[i % h]!), lo), hi);
  }
  return { data: out, shape: [...dtRaw.shape] };
}

/** A = −exp(A_log) (§1.2 step 5). */
export function aFromALog(aLog: FloatArray): Float64Array {
  return Float64Array.from(aLog, (v) => -Math.exp(v));
}

/**
 * Split the last axis of x [..., Σsizes] into consecutive parts [..., sizes[i]] (like ONNX Split).
 */
export function splitLast(x: Tensor, sizes: readonly number[]): Tensor<Float64Array>[] {
  const w = x.shape[x.shape.length - 1] ?? 0;
  const total = sizes.reduce((a, s) => a + s, 0);
  if (total !== w) throw new RangeError(`splitLast(sizes): expected sizes summing to ${w}, got [${sizes.join(', ')}] = ${total}`);
  const rows = w > 0 ? x.data.length / w : 0;
  const lead = x.shape.slice(0, -1);
  let off = 0;
  return sizes.map((s) => {
    const out = new Float64Array(rows * s);
    for (let r = 0; r < rows; r++) for (let i = 0; i < s; i++) out[r * s + i] = x.data[r * w + off + i]!;
    off += s;
    return { data: out, shape: [...lead, s] };
  });
}
