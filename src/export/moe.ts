/**
 * A routed mixture of experts (docs/model.md §1.5, §1.6; layers.ts MoeConfig) in standard ONNX ops,
 * the same graph on every execution provider. Every expert runs on every token and the router's
 * weights, zero outside each token's top-k, select: with the experts of a layer stacked into one
 * matrix each way (weights.ts stackSource) that is two products for all E experts.
 *
 *   x [..,D] ─ router (float32) ─ logits [..,E] ─ route ─ w [..,E]   (0 except at the chosen k)
 *   x ─ [fc1_latent_proj] ─ experts.up (E·R rows) ─ [..,E,R] ─ act ─ h [..,E,F] ─ ·w[..,E,1]
 *     ─ [..,E·F] ─ experts.down (E·F columns) ─ [fc2_latent_proj] ─ + shared_experts(x) → [..,D]
 *
 * This spends E/k times the expert FLOPs of a sparse dispatch (BENCHMARKS.md has the CPU figures);
 * in exchange it has no data-dependent shapes and no scatter, and the router's choices are exact.
 * Glossary: E experts, k chosen per token, F expert width, R = 2F (gate_up) or F (relu2),
 * Dl latent width, G router groups.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { type Ctx, type LinearWeight, linear, silu } from './blocks.js';
import type { MoeConfig } from '../package/layers.js';
import type { MoeKeys } from './families/types.js';
import { declareMlp, mlp, type MlpWeights, relu2 } from './mlp.js';
import type { Declarer } from './weights.js';

export interface MoeWeights {
  router: Value; // [E,D] float32
  scoreBias?: Value; // [E]
  latentIn?: LinearWeight; // [Dl,D]
  latentOut?: LinearWeight; // [D,Dl]
  up: LinearWeight; // [E·R,Din]
  down: LinearWeight; // [Din,E·F]
  shared?: MlpWeights;
}

export function declareMoe(d: Declarer, m: MoeConfig, k: MoeKeys): MoeWeights {
  if (m.shared && !k.shared) throw new RangeError('moe: the config has a shared expert but the family names none');
  return {
    router: d.init(k.router),
    scoreBias: d.opt(k.scoreBias),
    latentIn: k.latentIn ? d.proj(k.latentIn) : undefined,
    latentOut: k.latentOut ? d.proj(k.latentOut) : undefined,
    up: d.experts(k.up, m.nExperts, 'rows'),
    down: d.experts(k.down, m.nExperts, 'cols'),
    shared: m.shared && k.shared ? declareMlp(d, m.shared, k.shared) : undefined,
  };
}

/** 1 at the `indices` [..,k] (int64) along a new last axis of size E, 0 elsewhere: [..,E] float32. */
function chosen(g: GraphBuilder, indices: Value, E: number): Value {
  const experts = g.constant(
    'int64',
    [E],
    Array.from({ length: E }, (_, e) => e),
  ); // [E]
  const hit = op.Cast(g, op.Equal(g, op.Unsqueeze(g, indices, [-1]), experts), 'float32', 1); // [..,k,E]
  return op.ReduceSum(g, hit, [-2], false); // [..,E]
}

const NEG_INF = (g: GraphBuilder): Value => g.constant('float32', [], [-Infinity]);

/**
 * The routing weights w [..,E] from the router logits [..,E] (MoeConfig doc):
 *   softmax_topk      Softmax over the logits with everything outside the top-k set to −∞;
 *   sigmoid_grouped   s = sigmoid(logits); choice = s + bias, −∞ outside the best `topkGroup` groups;
 *                     w = s at the top-k of choice, / (Σ + 1e-20) when normTopK, · scale.
 */
function route(ctx: Ctx, m: MoeConfig, logits: Value, scoreBias: Value | undefined): Value {
  const { g } = ctx;
  const E = m.nExperts;
  return g.scope('route', () => {
    if (m.router === 'softmax_topk') {
      const top = op.TopK(g, logits, m.topK, -1).indices; // [..,k]
      const keep = op.Cast(g, chosen(g, top, E), 'bool', 9); // [..,E]
      return op.Softmax(g, op.Where(g, keep, logits, NEG_INF(g)), -1); // [..,E]
    }
    const s = op.Sigmoid(g, logits); // [..,E]
    let choice = scoreBias ? op.Add(g, s, scoreBias) : s; // [..,E]
    if (m.nGroup > 1) {
      const lead = choice.shape.slice(0, -1);
      const per = E / m.nGroup;
      const grouped = op.Reshape(g, choice, [...lead, m.nGroup, per]); // [..,G,E/G]
      const groupScore = op.ReduceSum(g, op.TopK(g, grouped, 2, -1).values, [-1], false); // [..,G]  sum of each group's best two
      const groups = chosen(g, op.TopK(g, groupScore, m.topkGroup, -1).indices, m.nGroup); // [..,G]
      const perExpert = op.Reshape(g, op.Expand(g, op.Unsqueeze(g, groups, [-1]), [...lead, m.nGroup, per]), [...lead, E]); // [..,E]
      choice = op.Where(g, op.Cast(g, perExpert, 'bool', 9), choice, NEG_INF(g)); // [..,E]
    }
    let w = op.Mul(g, s, chosen(g, op.TopK(g, choice, m.topK, -1).indices, E)); // [..,E]
    if (m.normTopK) w = op.Div(g, w, op.Add(g, op.ReduceSum(g, w, [-1]), g.constant('float32', [], [1e-20]))); // [..,E]
    return m.scale === 1 ? w : op.Mul(g, w, g.constant('float32', [], [m.scale]));
  });
}

/** The experts on x [..,D] (already normalised) → [..,D], in scope `name`. */
export function moe(ctx: Ctx, m: MoeConfig, w: MoeWeights, x: Value, name = 'moe'): Value {
  const { g } = ctx;
  const E = m.nExperts;
  const F = m.hidden;
  return g.scope(name, () => {
    const lead = x.shape.slice(0, -1);
    const logits = linear(ctx, 'router', x, { kind: 'dense', w: w.router }); // [..,E]  float32 always
    const weights = route(ctx, m, logits, w.scoreBias); // [..,E]
    const xin = w.latentIn ? linear(ctx, 'fc1_latent_proj', x, w.latentIn) : x; // [..,Din]
    const up = linear(ctx, 'experts_up', xin, w.up); // [..,E·R]
    let h: Value; // [..,E,F]
    if (m.expert === 'gate_up') {
      const [gate, u] = op.Split(g, op.Reshape(g, up, [...lead, E, 2 * F]), [F, F], -1); // [..,E,F] ×2
      h = op.Mul(g, silu(g, gate!), u!);
    } else h = relu2(g, op.Reshape(g, up, [...lead, E, F]));
    const weighted = op.Reshape(g, op.Mul(g, h, op.Unsqueeze(g, weights, [-1])), [...lead, E * F]); // [..,E·F]
    let y = linear(ctx, 'experts_down', weighted, w.down); // [..,Din]
    if (w.latentOut) y = linear(ctx, 'fc2_latent_proj', y, w.latentOut); // [..,D]
    return w.shared ? op.Add(g, y, mlp(ctx, w.shared, x, 'shared_experts')) : y; // [..,D]
  });
}
