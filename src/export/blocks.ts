/**
 * Small blocks shared by the prefill and the single-step graphs: projections, RMSNorm, SiLU,
 * the grouped gated RMSNorm. Glossary: B batch, L sequence, D d_model, DI d_inner, G groups.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import type { Dim } from '../graph/shape.js';
import type { Value } from '../graph/value.js';
import type { Mamba2Config } from './config-types.js';

export const B = 'batch';
export const L = 'sequence';

/** What graph code needs besides the builder: the config and, for [B,L,·] tensors, [B,L] as a tensor. */
export class Ctx {
  private readonly tails = new Map<number, Value>();
  constructor(
    readonly g: GraphBuilder,
    readonly c: Mamba2Config,
    /** int64 [2] = [B, L] of this call (absent in the single-step graph, where tensors are [B,·]). */
    readonly bl?: Value,
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

/** y = x·Wᵀ (+ bias) for x [B,L,Din] or [B,Din] and W [Dout,Din] as stored (Gemm transB). */
export function linear(ctx: Ctx, name: string, x: Value, w: Value, bias?: Value): Value {
  const { g } = ctx;
  return g.scope(name, () => {
    const dOut = w.shape[0] as number;
    if (x.rank === 2) return op.Gemm(g, x, w, bias, { transB: true }); // [B,Dout]
    const din = x.shape[x.rank - 1]!;
    const x2 = op.Reshape(g, x, ['BL', din]); // [B·L,Din]
    const y2 = op.Gemm(g, x2, w, bias, { transB: true }); // [B·L,Dout]
    return op.ReshapeTo(g, y2, ctx.blShape(dOut), [...x.shape.slice(0, -1), dOut]); // [B,L,Dout]
  });
}

/** x·sigmoid(x) */
export function silu(g: GraphBuilder, x: Value): Value {
  return op.Mul(g, x, op.Sigmoid(g, x));
}

/** x / sqrt(mean(x², last axis) + eps), in the Pow→ReduceMean→Add→Sqrt→Div form ORT fuses. */
export function rmsNormalize(g: GraphBuilder, x: Value, eps: number): Value {
  const ms = op.ReduceMean(g, op.Pow(g, x, g.constant('float32', [], [2])), [-1]); // [...,1]
  const rms = op.Sqrt(g, op.Add(g, ms, g.constant('float32', [], [eps]))); // [...,1]
  return op.Div(g, x, rms); // [...,D]
}

/** RMSNorm with weight w [D] (plain multiplier, no 1+w; spec §1.1). */
export function rmsNorm(g: GraphBuilder, name: string, x: Value, w: Value, eps: number): Value {
  return g.scope(name, () => op.Mul(g, rmsNormalize(g, x, eps), w));
}

/**
 * Gated RMSNorm of the mixer (spec §1.2 step 8, §6.2/§6.3): RMSNorm(y·silu(z)) per group of
 * DI/G channels, then ·w. Works on [B,L,DI] and [B,DI].
 */
export function gatedRmsNorm(ctx: Ctx, y: Value, z: Value, w: Value): Value {
  const { g, c } = ctx;
  return g.scope('norm', () => {
    const gated = op.Mul(g, y, silu(g, z)); // [...,DI]
    if (!c.rmsNorm) return gated;
    const lead: Dim[] = [...gated.shape.slice(0, -1)];
    const width = c.dSsm;
    let n: Value;
    if (c.nGroups === 1) n = rmsNormalize(g, gated, c.normEps);
    else {
      const grouped = op.Reshape(g, gated, [...lead, c.nGroups, width / c.nGroups]); // [...,G,DI/G]
      n = op.Reshape(g, rmsNormalize(g, grouped, c.normEps), [...lead, width]); // [...,DI]
    }
    return op.Mul(g, n, w); // [...,DI]
  });
}
