/**
 * The language model graph (docs/model.md §1.1; HF `Mamba2ForCausalLM`, `BambaModel`): embedding → NL
 * blocks → RMSNorm → lm_head. A per-layer plan: each layer kind (Mamba-2, or attention in hybrids)
 * brings its weights, its states and its mixer, and every layer is the same block:
 *
 *   x ─ RMSNorm ─ body (LAYERS[kind]) ─ ·r + ─┬─ [RMSNorm ─ MLP + MoE ─ ·r +] ─ next layer
 *   └─────────────────────────────────────────┘    (mlp.ts, moe.ts; r: the residual multiplier)
 *
 * The body is a mixer with a state (Mamba-2, attention) or a stateless feed-forward (Nemotron-H's
 * MLP and MoE layers); what follows a mixer is the family's layer plan (package/layers.ts).
 *
 * One graph serves every call: an If on sequence == 1 takes the single-step branch (the mixers'
 * recurrent step forms: no chunk machinery, no padding; attention with one query); otherwise the
 * sequence branch runs the SSD form. Both branches read the same initializers.
 *
 *   input_ids [B,L] ─ Gather ─ h [B,L,D] ─ If(L == 1) ─ then: step layers on [B,D] ─┐
 *                                                    └ else: sequence layers [B,L,D] ┴─ logits, present_*
 * The I/O is io.ts's table: per layer, in order, the states of its kind.
 */
import { ModelBuilder } from '../graph/builder.js';
import type { GraphBuilder } from '../graph/builder.js';
import type { ModelIR } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import { DEFAULT_DOMAIN, MS_DOMAIN, RMS_NORMALIZATION_OPSET } from '../graph/opset.js';
import type { Value } from '../graph/value.js';
import { type AttentionWeights, attentionLayer, declareAttention } from './attention.js';
import { Ctx, embed, fusedNorms, linear, rmsNorm, type Tuning } from './blocks.js';
import type { TensorStore } from './checkpoint/types.js';
import type { Mamba2Config } from '../package/config.js';
import { type SequenceForm, sequenceForm } from './forms.js';
import { hybridOf, layerKinds, type LayerKind, mlpOf, moeOf, scalarsOf } from '../package/layers.js';
import { familyOf } from './families/index.js';
import { afterNormKey, mlpKeys, moeKeys } from './layer-tensors.js';
import { declareMoe, moe, type MoeWeights } from './moe.js';
import { IO_NAMES, ioTable } from '../package/io.js';
import { mamba2Mixer, mamba2MixerStep } from './mixer.js';
import { declareMlp, mlp, type MlpWeights } from './mlp.js';
import type { SsdForm } from '../package/meta.js';
import { declareMambaLayer, declareModelWeights, type Declarer, FP32_PLAN, type LayerWeights, type WeightPlan } from './weights.js';

export interface BuildOptions {
  /** Overrides the config's chunk size Q (the math does not depend on it). */
  chunkSize?: number;
  /** 'last': logits only for the last position ([B,1,V]); saves the head's work and copies in prefill. */
  logits?: 'all' | 'last';
  /**
   * 'both' (default): an If on sequence == 1 picks the single-step or the sequence path.
   * 'step': only the single-step graph (input_ids [batch, 1]); 'sequence': only the sequence path
   * (also for one token). The last two exist to measure what the If costs and buys (bench/).
   */
  paths?: 'both' | 'step' | 'sequence';
  /** Construction choices that keep the math (blocks.ts Tuning). */
  tuning?: Tuning;
  /** How the sequence path computes conv + SSD (default 'chunked'). */
  ssd?: SsdForm;
  /** Storage of the projection and embedding weights (default fp32; weights.ts). */
  weights?: WeightPlan;
  producerVersion?: string;
  docString?: string;
}

/** How the mixers run: the single step ([B,D]) or a sequence ([B,L,D]) through an SSD form. */
interface Mode {
  step: boolean;
  form: SequenceForm;
}

type BodyWeights =
  | { kind: 'mamba2'; w: LayerWeights }
  | { kind: 'attention'; w: AttentionWeights }
  | { kind: 'mlp'; w: MlpWeights }
  | { kind: 'moe'; w: MoeWeights };

/** One body kind: its tensors (pre-norm included) and what it computes; `past`/present follow io.ts's order (none for FFNs). */
interface LayerBuilder<K extends LayerKind> {
  declare(d: Declarer, c: Mamba2Config, i: number): { norm: Value; body: Extract<BodyWeights, { kind: K }> };
  mix(ctx: Ctx, w: Extract<BodyWeights, { kind: K }>['w'], u: Value, past: Value[], mode: Mode): { y: Value; present: Value[] };
}

const LAYERS: { [K in LayerKind]: LayerBuilder<K> } = {
  mamba2: {
    declare: (d, c, i) => {
      const w = declareMambaLayer(d, c, i);
      return { norm: w.norm, body: { kind: 'mamba2', w } };
    },
    mix: (ctx, w, u, [conv, ssm], mode) => {
      const s = { conv: conv!, ssm: ssm! };
      const r = mode.step ? mamba2MixerStep(ctx, w, u, s) : mamba2Mixer(ctx, w, u, s, mode.form);
      return { y: r.y, present: [r.state.conv, r.state.ssm] };
    },
  },
  attention: {
    declare: (d, c, i) => {
      const { norm, attn } = declareAttention(d, c, i);
      return { norm, body: { kind: 'attention', w: attn } };
    },
    mix: (ctx, w, u, [key, value, conv]) => attentionLayer(ctx, ctx.c, w, u, { key: key!, value: value!, conv }),
  },
  mlp: {
    declare: (d, c, i) => ({
      norm: d.init(familyOf(c).names.norm(c, i)),
      body: { kind: 'mlp', w: declareMlp(d, mlpOf(c), need(mlpKeys(c, i, 'body'))) },
    }),
    mix: (ctx, w, u) => ({ y: mlp(ctx, w, u, 'mixer'), present: [] }),
  },
  moe: {
    declare: (d, c, i) => ({
      norm: d.init(familyOf(c).names.norm(c, i)),
      body: { kind: 'moe', w: declareMoe(d, moeOf(c), need(moeKeys(c, i))) },
    }),
    mix: (ctx, w, u) => ({ y: moe(ctx, moeOf(ctx.c), w, u, 'mixer'), present: [] }),
  },
};

function need<T>(keys: T | undefined): T {
  if (keys === undefined) throw new Error('lm: the layer plan and the checkpoint names disagree (layer-tensors.ts)');
  return keys;
}

/** The feed-forward after a mixer: its norm and the sum of its parts (layers.ts `after`). */
interface AfterWeights {
  norm: Value;
  mlp?: MlpWeights;
  moe?: MoeWeights;
}

interface BlockWeights {
  norm: Value;
  body: BodyWeights;
  after?: AfterWeights;
}

function declareBlock(d: Declarer, c: Mamba2Config, i: number): BlockWeights {
  const kind = layerKinds(c)[i]!;
  const { norm, body } = (LAYERS[kind] as LayerBuilder<LayerKind>).declare(d, c, i);
  const afterNorm = afterNormKey(c, i);
  if (!afterNorm) return { norm, body };
  const mk = mlpKeys(c, i, 'after');
  const ek = moeKeys(c, i);
  const after = {
    norm: d.init(afterNorm),
    mlp: mk ? declareMlp(d, mlpOf(c), mk) : undefined,
    moe: ek ? declareMoe(d, moeOf(c), ek) : undefined,
  };
  return { norm, body, after };
}

/** x + y·r (r: the residual multiplier, layers.ts ModelScalars). */
function residual(g: GraphBuilder, x: Value, y: Value, r: number): Value {
  return op.Add(g, x, r === 1 ? y : op.Mul(g, y, g.constant('float32', [], [r]))); // residual in fp32
}

/**
 * Layer i: x + r·body(norm(x)), then + r·(mlp + moe)(norm2(·)) when the layer has a feed-forward
 * after its mixer. x is [B,L,D] or [B,D].
 */
function block(ctx: Ctx, i: number, w: BlockWeights, x: Value, past: Value[], mode: Mode): { x: Value; present: Value[] } {
  const { g, c } = ctx;
  const fused = fusedNorms(ctx.tuning);
  const r = scalarsOf(c).residual;
  return g.scope(`layers.${i}`, () => {
    const mix = (LAYERS[w.body.kind] as LayerBuilder<LayerKind>).mix;
    const m = mix(ctx, w.body.w, rmsNorm(g, 'norm', x, w.norm, c.normEps, fused), past, mode);
    let y = residual(g, x, m.y, r);
    const a = w.after;
    if (a) {
      const u = rmsNorm(g, 'norm2', y, a.norm, c.normEps, fused);
      const parts = [...(a.mlp ? [mlp(ctx, a.mlp, u)] : []), ...(a.moe ? [moe(ctx, moeOf(c), a.moe, u)] : [])];
      y = residual(
        g,
        y,
        parts.reduce((s, p) => op.Add(g, s, p)),
        r,
      );
    }
    return { x: y, present: m.present };
  });
}

type Weights = ReturnType<typeof declareModelWeights<BlockWeights>>;

/** Layers, final norm and head; returns logits then every layer's present states. */
function layersAndHead(ctx: Ctx, w: Weights, x0: Value, past: Value[][], mode: Mode, lastOnly: boolean): Value[] {
  const { g, c } = ctx;
  let x = x0;
  const out: Value[] = [];
  w.layers.forEach((lw, i) => {
    const r = block(ctx, i, lw, x, past[i]!, mode);
    x = r.x;
    out.push(...r.present);
  });
  if (lastOnly && !mode.step) x = op.Squeeze(g, op.Slice(g, x, [-1], [op.END], [1]), [1]); // [B,D]
  let logits = linear(ctx, 'lm_head', rmsNorm(g, 'norm_f', x, w.normF, c.normEps, fusedNorms(ctx.tuning)), w.lmHead); // [B,(L,)V]
  const divisor = scalarsOf(c).logitsDivisor;
  if (divisor !== 1) logits = op.Div(g, logits, g.constant('float32', [], [divisor])); // Granite's logits_scaling
  return [logits.rank === 2 ? op.Unsqueeze(g, logits, [1]) : logits, ...out];
}

/** The model graph of a Mamba-2 or hybrid checkpoint. */
export function buildMamba2Model(c0: Mamba2Config, store: TensorStore, opts: BuildOptions = {}): ModelIR {
  const c: Mamba2Config = opts.chunkSize ? { ...c0, chunkSize: opts.chunkSize } : c0;
  const form = sequenceForm(opts.ssd ?? 'chunked');
  const plan = opts.weights ?? FP32_PLAN;
  const quantized = plan.dtype === 'int8' || plan.dtype === 'int4';
  const contribStep = opts.tuning?.step !== 'ops' && (opts.paths ?? 'both') !== 'sequence';
  const opsets = {
    ...form.opsets,
    ...(quantized || contribStep ? { [MS_DOMAIN]: 1 } : {}),
    ...(fusedNorms(opts.tuning ?? {}) ? { [DEFAULT_DOMAIN]: RMS_NORMALIZATION_OPSET } : {}),
  };
  const m = new ModelBuilder({
    name: hybridOf(c) ? 'mamba2-hybrid' : 'mamba2',
    opsets,
    producerVersion: opts.producerVersion,
    docString: opts.docString,
  });
  const g = m.graph;
  const paths = opts.paths ?? 'both';
  const io = ioTable(c, { lastLogits: opts.logits === 'last', stepOnly: paths === 'step' });
  const ids = g.input(IO_NAMES.inputIds, 'int64', io.inputs[0]!.shape); // [B,L]
  const past: Value[][] = Array.from({ length: c.nLayer }, () => []);
  for (const e of io.inputs.slice(1)) past[e.layer!]!.push(g.input(e.name, e.dtype, e.shape));
  const w = declareModelWeights(g, c, store, plan, (d, i) => declareBlock(d, c, i));
  const emb = embed(g, w.embedding, ids); // [B,L,D] float32
  const mult = scalarsOf(c).embedding;
  const h = mult === 1 ? emb : op.Mul(g, emb, g.constant('float32', [], [mult])); // Granite's embedding_multiplier
  const bl = op.Shape(g, ids); // [2] = [B,L]
  const step = (sg: GraphBuilder) =>
    layersAndHead(new Ctx(sg, c, undefined, opts.tuning), w, op.Squeeze(sg, h, [1]), past, { step: true, form }, true);
  const sequence = (sg: GraphBuilder) =>
    layersAndHead(new Ctx(sg, c, bl, opts.tuning), w, h, past, { step: false, form }, opts.logits === 'last');
  let results: Value[];
  if (paths === 'both') {
    const isStep = op.Squeeze(g, op.Equal(g, op.Slice(g, bl, [1], [2], [0]), g.constant('int64', [1], [1])), [0]); // bool
    results = op.If(
      g,
      isStep,
      io.outputs.map((o) => o.shape),
      step,
      sequence,
    );
  } else results = paths === 'step' ? step(g) : sequence(g);
  io.outputs.forEach((o, k) => g.output(results[k]!, o.name, o.shape));
  m.metadata['mamba2_onnx.config'] = JSON.stringify(c);
  return m.finish();
}
