/**
 * The MLP after the mixer in every layer of a hybrid (docs/model.md §1.1 step 3, §1.3, §6.15):
 *
 *   swiglu (Bamba)         x ─┬─ gate_proj ─ SiLU ─┐
 *                             └─ up_proj ──────────┴─ Mul ─ down_proj
 *   gated  (GatedMLP)      x ─ fc1 ─ Split [value | gate] ─ value·SiLU(gate) ─ fc2
 *
 * Both are down(silu(gate)·up); only the weight layout differs. Works on [B,L,D] and [B,D].
 */
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { type Ctx, type LinearWeight, linear, silu } from './blocks.js';
import type { Mamba2Config } from '../package/config.js';
import { hybridOf, type MlpKind } from '../package/layers.js';
import { mlpKeys } from './hybrid-names.js';
import type { Declarer } from './weights.js';

export type MlpWeights = { norm: Value } & (
  | { kind: 'swiglu'; gate: LinearWeight; up: LinearWeight; down: LinearWeight }
  | { kind: 'gated'; hidden: number; fc1: LinearWeight; down: LinearWeight }
);

/** The MLP tensors of layer i (undefined when the model has no MLP). */
export function declareMlp(d: Declarer, c: Mamba2Config, i: number): MlpWeights | undefined {
  const spec = hybridOf(c)?.mlp;
  const k = mlpKeys(c, i);
  if (!spec || !k) return undefined;
  const norm = d.init(k.mlpNorm);
  if (spec.kind === 'swiglu') return { norm, kind: 'swiglu', gate: d.proj(k.gate!), up: d.proj(k.up!), down: d.proj(k.down) };
  return { norm, kind: 'gated', hidden: spec.hidden, fc1: d.proj(k.fc1!), down: d.proj(k.down) };
}

type MlpBuilder<K extends MlpKind> = (ctx: Ctx, w: Extract<MlpWeights, { kind: K }>, x: Value) => Value;

const MLPS: { [K in MlpKind]: MlpBuilder<K> } = {
  swiglu: (ctx, w, x) => {
    const h = op.Mul(ctx.g, silu(ctx.g, linear(ctx, 'gate_proj', x, w.gate)), linear(ctx, 'up_proj', x, w.up)); // [...,I]
    return linear(ctx, 'down_proj', h, w.down); // [...,D]
  },
  gated: (ctx, w, x) => {
    const [value, gate] = op.Split(ctx.g, linear(ctx, 'fc1', x, w.fc1), [w.hidden, w.hidden], -1); // [...,I] ×2
    return linear(ctx, 'fc2', op.Mul(ctx.g, value!, silu(ctx.g, gate!)), w.down); // [...,D]
  },
};

/** The MLP on the (already normalised) x [...,D] → [...,D]. */
export function mlp(ctx: Ctx, w: MlpWeights, x: Value): Value {
  return ctx.g.scope('mlp', () => (MLPS[w.kind] as MlpBuilder<MlpKind>)(ctx, w, x));
}
