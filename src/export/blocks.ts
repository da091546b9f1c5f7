/**
 * Small blocks shared by the prefill and the single-step graphs: projections (dense fp32/fp16 or
 * MatMulNBits), the embedding lookup, RMSNorm, SiLU, the grouped gated RMSNorm. Everything outside
 * `linear` and `embed` computes in float32 (norm statistics, residual stream, SSD: model.md §6.6, §6.12). Glossary: B batch, L sequence, D d_model, DI d_inner, G groups.
 */
import type { GraphBuilder } from '../graph/builder.js';
import { type DType, ONNX_DTYPE } from '../onnx/dtype.js';
import * as op from '../graph/ops.js';
import { MatMulNBits } from '../graph/ops-quant.js';
import type { Dim } from '../onnx/shape.js';
import type { Value } from '../graph/value.js';
import type { Mamba2Config } from '../package/config.js';
import { BATCH, SEQUENCE } from '../package/io.js';
import type { NBits } from './quantize.js';

/** The batch and sequence dims, as the I/O contract spells them. */
export const B = BATCH;
export const L = SEQUENCE;

export interface Tuning {
  /**
   * How the intra-chunk segment sums are formed: 'stable' (default; docs/model.md §2.1: cumulative sums of
   * masked copies, exact to rounding) or 'diff' (Acs_i − Acs_j: no Q×Q CumSum, but the difference of
   * two sums of up to Q log-decays loses ≈ |Acs|·2⁻²³ in the exponent).
   */
  segsum?: 'stable' | 'diff';
  /**
   * 'ops' (default): Pow, ReduceMean, Add, Sqrt, Div, Mul (ai.onnx 21), in the pattern ORT's CPU and
   * CUDA optimizers fuse into their SimplifiedLayerNormalization kernel; its WebGPU EP does not fuse.
   * 'fused': one standard RMSNormalization node per norm, which makes the graph ai.onnx 23 (kernels:
   * ORT CPU, CUDA, WebGPU; ≈ 26 % fewer WebGPU step nodes), but ORT 1.30's WebGPU EP has no If
   * kernel for opset 23, so there the If around the two paths runs on the CPU (README "ONNX validity").
   */
  rmsnorm?: 'ops' | 'fused';
  /** The prefill conv: K 'shifted' products (default) or one grouped 'conv' node (conv.ts). */
  conv?: 'conv' | 'shifted';
  /**
   * The single-token step: 'contrib' (default): ORT's CausalConvWithState for the conv (one node
   * instead of seven), LinearAttention for the SSD update in the state's own layout (one pass over the
   * state instead of four; ssd-contrib.ts) and Softplus without the overflow guard; or standard 'ops'
   * (for runtimes other than ONNX Runtime).
   */
  step?: 'ops' | 'contrib';
  /**
   * The single-token step of a mixture of experts (moe.ts): 'gather' (default) reads only the k
   * chosen experts' weights (dense fp32/fp16 weights; int8/int4 always run 'all'); 'all' runs every
   * expert masked by the router weights, as the sequence path does.
   */
  moeStep?: 'gather' | 'all';
}

/** What graph code needs besides the builder: the config and, for [B,L,·] tensors, [B,L] as a tensor. */
export class Ctx {
  private readonly tails = new Map<number, Value>();
  constructor(
    readonly g: GraphBuilder,
    readonly c: Mamba2Config,
    /** int64 [2] = [B, L] of this call (absent in the single-step graph, where tensors are [B,·]). */
    readonly bl?: Value,
    /** Graph-construction choices that do not change the math (export flags; bench/ measures them). */
    readonly tuning: Tuning = {},
  ) {}

  /** int64 [3] = [B, L, n], to reshape a Gemm result back to [B,L,n]. */
  blShape(n: number): Value {
    if (!this.bl) throw new Error('blShape: this context has no [B,L] shape');
    let v = this.tails.get(n);
    if (!v) {
      v = op.Concat(this.g, [this.bl, this.g.constant('int64', [1], [n])], 0); // [3]
      this.tails.set(n, v);
    }
    return v;
  }
}

/**
 * A projection weight W [N,K] (out × in) as the graph holds it (the dtype policy: weights.ts):
 *  - dense: float32, or float16 (the product then runs in fp16 between two Casts);
 *  - nbits: MatMulNBits' block-quantized B, scales [N,kBlocks] and packed zero points.
 */
export type LinearWeight = { kind: 'dense'; w: Value } | ({ kind: 'nbits' } & NBitsWeight);

export interface NBitsWeight {
  N: number;
  K: number;
  bits: NBits;
  blockSize: number;
  /** MatMulNBits accuracy_level (0: unset). */
  accuracyLevel: 0 | 1 | 2 | 3 | 4;
  b: Value; // uint8 [N,kBlocks,blockSize·bits/8]
  scales: Value; // float32 [N,kBlocks]
  zeroPoints: Value; // uint8 [N,⌈kBlocks·bits/8⌉]
}

/** An embedding table [V,D]: dense (float32 or float16) or in MatMulNBits layout (shared with a tied lm_head). */
export type EmbeddingWeight = LinearWeight;

const castTo = (g: GraphBuilder, x: Value, to: DType): Value => (x.dtype === to ? x : op.Cast(g, x, to, ONNX_DTYPE[to]));

/**
 * y = x·Wᵀ (+ bias) for x [B,L,K] or [B,K] (float32), W as stored. Dense: Gemm transB (x cast to
 * W's dtype and the result back to float32). Quantized: MatMulNBits. The bias is added in float32.
 */
export function linear(ctx: Ctx, name: string, x: Value, w: LinearWeight, bias?: Value): Value {
  const { g } = ctx;
  return g.scope(name, () => {
    if (w.kind === 'nbits') {
      const y = MatMulNBits(g, x, w.b, w.scales, w.zeroPoints, undefined, {
        K: w.K,
        N: w.N,
        bits: w.bits,
        blockSize: w.blockSize,
        accuracyLevel: w.accuracyLevel,
      }); // [...,N]
      return bias ? op.Add(g, y, bias) : y;
    }
    const W = w.w;
    const dOut = W.shape[0] as number;
    const fused = W.dtype === 'float32' ? bias : undefined;
    const xs = castTo(g, x, W.dtype);
    let y: Value;
    if (x.rank === 2)
      y = op.Gemm(g, xs, W, fused, { transB: true }); // [B,Dout]
    else {
      const din = x.shape[x.rank - 1]!;
      const x2 = op.Reshape(g, xs, ['BL', din]); // [B·L,Din]
      const y2 = op.Gemm(g, x2, W, fused, { transB: true }); // [B·L,Dout]
      y = op.ReshapeTo(g, y2, ctx.blShape(dOut), [...x.shape.slice(0, -1), dOut]); // [B,L,Dout]
    }
    y = castTo(g, y, 'float32');
    return bias && !fused ? op.Add(g, y, bias) : y;
  });
}

/**
 * Embedding rows of `ids` [B,L] as float32 [B,L,D]. A quantized table is dequantized after the
 * Gather (only the rows used), from the same tensors MatMulNBits reads:
 *
 *   ids ─ Gather(B) [B,L,kb,blob] ─ unpack ─ q ─┐
 *       ─ Gather(zero points) ─ unpack ─ zp ────┼─ (q − zp)·scale [B,L,kb,bs] ─ Reshape ─ Slice → [B,L,D]
 *       ─ Gather(scales) [B,L,kb] ──────────────┘
 */
export function embed(g: GraphBuilder, e: EmbeddingWeight, ids: Value): Value {
  return g.scope('embeddings', () => {
    if (e.kind === 'dense') return castTo(g, op.Gather(g, e.w, ids), 'float32'); // [B,L,D]
    const kb = Math.ceil(e.K / e.blockSize);
    const lead = ids.shape;
    const q = unpackFloat(g, op.Gather(g, e.b, ids), e.bits, [...lead, kb, e.blockSize]); // [B,L,kb,bs]
    const zpAll = unpackFloat(g, op.Gather(g, e.zeroPoints, ids), e.bits, [...lead, (e.zeroPoints.shape[1] as number) * (8 / e.bits)]); // [B,L,≥kb]
    const zp = zpAll.shape[lead.length] === kb ? zpAll : op.Slice(g, zpAll, [0], [kb], [-1]);
    const sc = op.Gather(g, e.scales, ids); // [B,L,kb]
    const deq = op.Mul(g, op.Sub(g, q, op.Unsqueeze(g, zp, [-1])), op.Unsqueeze(g, sc, [-1])); // [B,L,kb,bs]
    const flat = op.Reshape(g, deq, [...lead, kb * e.blockSize]); // [B,L,kb·bs]
    return kb * e.blockSize === e.K ? flat : op.Slice(g, flat, [0], [e.K], [-1]); // [B,L,D]
  });
}

/** uint8 bytes [...] → float32 values [...target]: one value per byte (8 bits) or two, low nibble first (4 bits). */
function unpackFloat(g: GraphBuilder, bytes: Value, bits: NBits, target: readonly (string | number)[]): Value {
  if (bits === 8) return op.Reshape(g, castTo(g, bytes, 'float32'), target);
  const i = castTo(g, bytes, 'int32');
  const sixteen = g.constant('int32', [], [16]);
  const hi = op.Div(g, i, sixteen); // integer division
  const lo = op.Sub(g, i, op.Mul(g, hi, sixteen));
  const pairs = op.Concat(g, [op.Unsqueeze(g, lo, [-1]), op.Unsqueeze(g, hi, [-1])], -1); // [...,2]
  return castTo(g, op.Reshape(g, pairs, target), 'float32');
}

/** x·sigmoid(x) */
export function silu(g: GraphBuilder, x: Value): Value {
  return op.Mul(g, x, op.Sigmoid(g, x));
}

/** x / sqrt(mean(x², last axis) + eps), in the Pow→ReduceMean→Add→Sqrt→Div form ORT fuses. */
function rmsNormalize(g: GraphBuilder, x: Value, eps: number): Value {
  const ms = op.ReduceMean(g, op.Pow(g, x, g.constant('float32', [], [2])), [-1]); // [...,1]
  const rms = op.Sqrt(g, op.Add(g, ms, g.constant('float32', [], [eps]))); // [...,1]
  return op.Div(g, x, rms); // [...,D]
}

/** True when the norms are RMSNormalization nodes (the graph then needs ai.onnx RMS_NORMALIZATION_OPSET). */
export const fusedNorms = (t: Tuning): boolean => t.rmsnorm === 'fused';

/**
 * RMSNorm with weight w [D] (plain multiplier, no 1+w; docs/model.md §1.1). `fused`: one
 * RMSNormalization node (opset 23); else the standard ops, which ORT's CPU and CUDA optimizers fuse
 * back into one norm kernel (its WebGPU EP does not).
 */
export function rmsNorm(g: GraphBuilder, name: string, x: Value, w: Value, eps: number, fused = false): Value {
  return g.scope(name, () => (fused ? op.RMSNormalization(g, x, w, eps) : op.Mul(g, rmsNormalize(g, x, eps), w)));
}

/**
 * Gated RMSNorm of the mixer (docs/model.md §1.2 step 8, §6.2/§6.3): RMSNorm(y·silu(z)) per group of
 * DI/G channels, then ·w. Works on [B,L,DI] and [B,DI]. With `tuning.rmsnorm = 'fused'` the
 * normalisation is one RMSNormalization (scale w for G = 1; ones per group, then ·w). In standard ops
 * the grouped form multiplies by ones [DI/G] right after the Div: ORT's SimplifiedLayerNormFusion
 * fuses only a Div followed by a Mul with a 1-D scale, and w [DI] does not fit the groups.
 */
export function gatedRmsNorm(ctx: Ctx, y: Value, z: Value, w: Value): Value {
  const { g, c } = ctx;
  const fused = fusedNorms(ctx.tuning);
  return g.scope('norm', () => {
    const gated = op.Mul(g, y, silu(g, z)); // [...,DI]
    if (!c.rmsNorm) return gated;
    const lead: Dim[] = [...gated.shape.slice(0, -1)];
    const width = c.dSsm;
    const per = width / c.nGroups;
    if (c.nGroups === 1) return fused ? op.RMSNormalization(g, gated, w, c.normEps) : op.Mul(g, rmsNormalize(g, gated, c.normEps), w); // [...,DI]
    const grouped = op.Reshape(g, gated, [...lead, c.nGroups, per]); // [...,G,DI/G]
    const ones = g.constant('float32', [per], new Float32Array(per).fill(1)); // [DI/G]
    const normed = fused ? op.RMSNormalization(g, grouped, ones, c.normEps) : op.Mul(g, rmsNormalize(g, grouped, c.normEps), ones); // [...,G,DI/G]
    return op.Mul(g, op.Reshape(g, normed, [...lead, width]), w); // [...,DI]
  });
}
