/**
 * The dense MLPs of hybrids (docs/model.md §1.1 step 3, §1.3, §1.5, §1.6, §6.15):
 *
 *   swiglu  (Bamba)            x ─┬─ gate_proj ─ SiLU ─┐
 *                                 └─ up_proj ──────────┴─ Mul ─ down_proj
 *   gated   (GatedMLP)         x ─ fc1 ─ Split [value | gate] ─ value·SiLU(gate) ─ fc2
 *   gate_up (Granite)          x ─ input_linear ─ Split [gate | up] ─ SiLU(gate)·up ─ output_linear
 *   relu2   (Nemotron-H)       x ─ up_proj ─ relu(·)² ─ down_proj
 *
 * Works on [B,L,D] and [B,D]. An MLP sits in a layer's body, after its mixer, or in a MoE as its
 * shared expert; the names come from the family (layer-tensors.ts).
 */
import * as op from '../graph/ops.js';
import type { GraphBuilder } from '../graph/builder.js';
import type { Value } from '../graph/value.js';
import { type Ctx, type LinearWeight, linear, silu } from './blocks.js';
import type { MlpConfig, MlpKind } from '../package/layers.js';
import type { MlpKeys } from './families/types.js';
import type { Declarer } from './weights.js';

export type MlpWeights =
  | { kind: 'swiglu'; gate: LinearWeight; up: LinearWeight; down: LinearWeight }
  | { kind: 'gated'; hidden: number; fc1: LinearWeight; down: LinearWeight }
  | { kind: 'gate_up'; hidden: number; fc1: LinearWeight; down: LinearWeight }
  | { kind: 'relu2'; up: LinearWeight; down: LinearWeight };

/** The tensors of an MLP of config `m` with keys `k`. */
export function declareMlp(d: Declarer, m: MlpConfig, k: MlpKeys): MlpWeights {
  if (m.bias) throw new RangeError('mlp: MLP biases are not supported');
  const need = (key: string | undefined, role: string): string => {
    if (key === undefined) throw new RangeError(`mlp: a ${m.kind} MLP needs its ${role} tensor`);
    return key;
  };
  switch (m.kind) {
    case 'swiglu':
      return { kind: 'swiglu', gate: d.proj(need(k.gate, 'gate')), up: d.proj(need(k.up, 'up')), down: d.proj(k.down) };
    case 'gated':
      return { kind: 'gated', hidden: m.hidden, fc1: d.proj(need(k.fc1, 'fc1')), down: d.proj(k.down) };
    case 'gate_up':
      return { kind: 'gate_up', hidden: m.hidden, fc1: d.proj(need(k.fc1, 'fc1')), down: d.proj(k.down) };
    case 'relu2':
      return { kind: 'relu2', up: d.proj(need(k.up, 'up')), down: d.proj(k.down) };
  }
}

/** relu(x)² (Nemotron-H's `relu2`), as Max(x, 0)·Max(x, 0). */
export function relu2(g: GraphBuilder, x: Value): Value {
  const r = op.Max(g, x, g.constant('float32', [], [0]));
  return op.Mul(g, r, r);
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
  gate_up: (ctx, w, x) => {
    const [gate, up] = op.Split(ctx.g, linear(ctx, 'input_linear', x, w.fc1), [w.hidden, w.hidden], -1); // [...,I] ×2
    return linear(ctx, 'output_linear', op.Mul(ctx.g, silu(ctx.g, gate!), up!), w.down); // [...,D]
  },
  relu2: (ctx, w, x) => linear(ctx, 'down_proj', relu2(ctx.g, linear(ctx, 'up_proj', x, w.up)), w.down), // [...,D]
};

/** The MLP on the (already normalised) x [...,D] → [...,D], in scope `name`. */
export function mlp(ctx: Ctx, w: MlpWeights, x: Value, name = 'mlp'): Value {
  return ctx.g.scope(name, () => (MLPS[w.kind] as MlpBuilder<MlpKind>)(ctx, w, x));
}
