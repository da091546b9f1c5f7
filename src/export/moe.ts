/**
 * A routed mixture of experts (docs/model.md §1.5, §1.6; layers.ts MoeConfig) in standard ONNX ops,
 * the same graph on every execution provider. Every expert runs on every token and the router's
 * weights, zero outside each token's top-k, select: with the experts of a layer stacked into one
 * matrix each way (weights.ts stackSource) that is two products for all E experts; the single
 * step with dense weights gathers the k chosen experts' rows instead.
 *
 *   x [..,D] ─ router (float32) ─ logits [..,E] ─ route ─ w [..,E]   (0 except at the chosen k)
 *   x ─ [fc1_latent_proj] ─ experts.up (E·R rows) ─ [..,E,R] ─ act ─ h [..,E,F] ─ ·w[..,E,1]
 *     ─ [..,E·F] ─ experts.down (E·F rows) ─ [fc2_latent_proj] ─ + shared_experts(x) → [..,D]
 *
 * This spends E/k times the expert FLOPs of a sparse dispatch (BENCHMARKS.md has the CPU figures);
 * in exchange it has no data-dependent shapes and no scatter, and the router's choices are exact.
 * Glossary: E experts, k chosen per token, F expert width, R = 2F (gate_up) or F (relu2),
 * Dl latent width, G router groups.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { type DType, ONNX_DTYPE } from '../onnx/dtype.js';
import { B, type Ctx, type LinearWeight, linear, silu } from './blocks.js';
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
  /** [E·F,Din] when dense (`downRows`: each expert's down projection transposed), [Din,E·F] as MatMulNBits. */
  down: LinearWeight;
  downRows: boolean;
  shared?: MlpWeights;
}

export function declareMoe(d: Declarer, m: MoeConfig, k: MoeKeys): MoeWeights {
  if (m.shared && !k.shared) throw new RangeError('moe: the config has a shared expert but the family names none');
  return {
    router: d.init(k.router),
    scoreBias: d.opt(k.scoreBias),
    latentIn: k.latentIn ? d.proj(k.latentIn) : undefined,
    latentOut: k.latentOut ? d.proj(k.latentOut) : undefined,
    up: d.experts(k.up, m.nExperts, 'up').w,
    ...((): { down: LinearWeight; downRows: boolean } => {
      const r = d.experts(k.down, m.nExperts, 'down');
      return { down: r.w, downRows: r.transposed };
    })(),
    shared: m.shared && k.shared ? declareMlp(d, m.shared, k.shared) : undefined,
  };
}

const castTo = (g: GraphBuilder, x: Value, to: DType): Value => (x.dtype === to ? x : op.Cast(g, x, to, ONNX_DTYPE[to]));

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
function route(ctx: Ctx, m: MoeConfig, logits: Value, scoreBias: Value | undefined): { w: Value; chosen: Value } {
  const { g } = ctx;
  const E = m.nExperts;
  return g.scope('route', () => {
    if (m.router === 'softmax_topk') {
      const top = op.TopK(g, logits, m.topK, -1).indices; // [..,k]
      const keep = op.Cast(g, chosen(g, top, E), 'bool', 9); // [..,E]
      return { w: op.Softmax(g, op.Where(g, keep, logits, NEG_INF(g)), -1), chosen: top }; // [..,E]
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
    const top = op.TopK(g, choice, m.topK, -1).indices; // [..,k]
    let w = op.Mul(g, s, chosen(g, top, E)); // [..,E]
    if (m.normTopK) w = op.Div(g, w, op.Add(g, op.ReduceSum(g, w, [-1]), g.constant('float32', [], [1e-20]))); // [..,E]
    return { w: m.scale === 1 ? w : op.Mul(g, w, g.constant('float32', [], [m.scale])), chosen: top };
  });
}

/** The expert activation on up-projections [..,n,R] → [..,n,F]: silu(gate)·up (gate_up) or relu² (relu2). */
function activate(g: GraphBuilder, m: MoeConfig, up: Value): Value {
  if (m.expert === 'relu2') return relu2(g, up);
  const [gate, u] = op.Split(g, up, [m.hidden, m.hidden], -1); // [..,n,F] ×2
  return op.Mul(g, silu(g, gate!), u!);
}

/** Every expert on every token, weighted by w [..,E] (0 outside the top-k): two products over the stacked experts. */
function allExperts(ctx: Ctx, m: MoeConfig, w: MoeWeights, xin: Value, weights: Value): Value {
  const { g } = ctx;
  const [E, F] = [m.nExperts, m.hidden];
  const lead = xin.shape.slice(0, -1);
  const R = m.expert === 'gate_up' ? 2 * F : F;
  const h = activate(g, m, op.Reshape(g, linear(ctx, 'experts_up', xin, w.up), [...lead, E, R])); // [..,E,F]
  const weighted = op.Reshape(g, op.Mul(g, h, op.Unsqueeze(g, weights, [-1])), [...lead, E * F]); // [..,E·F]
  if (!w.downRows || w.down.kind !== 'dense') return linear(ctx, 'experts_down', weighted, w.down); // [..,Din]
  const W = w.down.w; // [E·F,Din]
  return g.scope('experts_down', () => castTo(g, op.MatMul(g, castTo(g, weighted, W.dtype), W), 'float32')); // [..,Din]
}

/**
 * The single step ([B,Din], dense weights): only the k chosen experts' weights are read, whole
 * rows gathered from the stacked matrices (up [E·R,Din], down [E·F,Din]).
 *
 *   chosen [B,k] ─ ·R + 0..R-1 ─ Gather(up) [B,k,R,Din] ─ ·x ─ act ─ ·w_k ─ h [B,1,k·F]
 *   chosen ─ ·F + 0..F-1 ─ Gather(down) [B,k,F,Din] ─ [B,k·F,Din] ─ h· → [B,Din]
 */
function chosenExperts(ctx: Ctx, m: MoeConfig, w: MoeWeights, xin: Value, weights: Value, top: Value): Value {
  const { g } = ctx;
  if (w.up.kind !== 'dense' || w.down.kind !== 'dense' || !w.downRows) throw new Error('moe: gathering experts needs dense weights');
  const [k, F] = [m.topK, m.hidden];
  const R = m.expert === 'gate_up' ? 2 * F : F;
  const Din = xin.shape[1]!;
  const [up, down] = [w.up.w, w.down.w];
  const offsets = (n: number): Value =>
    g.constant(
      'int64',
      [n],
      Array.from({ length: n }, (_, i) => i),
    );
  const base = (n: number): Value => op.Unsqueeze(g, op.Mul(g, top, g.constant('int64', [], [n])), [-1]); // [B,k,1]
  const rows = op.Add(g, base(R), offsets(R)); // [B,k,R]
  const cols = op.Add(g, base(F), offsets(F)); // [B,k,F]
  const x = op.Unsqueeze(g, castTo(g, xin, up.dtype), [1, 3]); // [B,1,Din,1]
  const hUp = op.Squeeze(g, op.MatMul(g, op.Gather(g, up, rows, 0), x), [3]); // [B,k,R]
  const wk = op.Unsqueeze(g, op.GatherElements(g, weights, top, -1), [-1]); // [B,k,1]
  const h = op.Mul(g, activate(g, m, castTo(g, hUp, 'float32')), wk); // [B,k,F]
  const gathered = op.Reshape(g, op.Gather(g, down, cols, 0), [B, k * F, Din]); // [B,k·F,Din]
  const hRow = op.Reshape(g, castTo(g, h, down.dtype), [B, 1, k * F]); // [B,1,k·F]
  return castTo(g, op.Squeeze(g, op.MatMul(g, hRow, gathered), [1]), 'float32'); // [B,Din]
}

/**
 * The experts on x [..,D] (already normalised) → [..,D], in scope `name`. The single step with
 * dense (fp32/fp16) weights reads only the chosen experts (chosenExperts); everything else runs
 * every expert, masked (allExperts).
 */
export function moe(ctx: Ctx, m: MoeConfig, w: MoeWeights, x: Value, name = 'moe'): Value {
  const { g } = ctx;
  return g.scope(name, () => {
    const logits = linear(ctx, 'router', x, { kind: 'dense', w: w.router }); // [..,E]  float32 always
    const r = route(ctx, m, logits, w.scoreBias); // w [..,E], chosen [..,k]
    const xin = w.latentIn ? linear(ctx, 'fc1_latent_proj', x, w.latentIn) : x; // [..,Din]
    const gather = x.rank === 2 && w.up.kind === 'dense' && w.downRows && ctx.tuning.moeStep !== 'all';
    let y = g.scope('experts', () => (gather ? chosenExperts(ctx, m, w, xin, r.w, r.chosen) : allExperts(ctx, m, w, xin, r.w))); // [..,Din]
    if (w.latentOut) y = linear(ctx, 'fc2_latent_proj', y, w.latentOut); // [..,D]
    return w.shared ? op.Add(g, y, mlp(ctx, w.shared, x, 'shared_experts')) : y; // [..,D]
  });
}
