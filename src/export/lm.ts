/**
 * The Mamba-2 language model graph (spec §1.1): embedding → NL × (x + Mixer(RMSNorm(x))) →
 * RMSNorm → lm_head. One graph serves every call: an If on sequence == 1 takes the recurrent
 * single-step path (no chunk machinery, no padding); otherwise the chunked SSD path runs. Both
 * branches read the same initializers, so the weights exist once.
 *
 *   input_ids [B,L] ─ Gather ─ h [B,L,D] ─ If(L == 1) ─ then: step layers on [B,D] ─┐
 *                                                    └ else: chunked layers [B,L,D] ┴─ logits, present_*
 */
import { ModelBuilder } from '../graph/builder.js';
import type { GraphBuilder } from '../graph/builder.js';
import type { ModelIR } from '../graph/ir.js';
import * as op from '../graph/ops.js';
import type { Value } from '../graph/value.js';
import { B, Ctx, embed, L, linear, rmsNorm, type Tuning } from './blocks.js';
import type { TensorStore } from './checkpoint/types.js';
import type { Mamba2Config } from './config-types.js';
import { IO_NAMES, ioTable } from './io.js';
import { type LayerState, mamba2Mixer, mamba2MixerStep } from './mixer.js';
import { declareWeights, FP32_PLAN, type LayerWeights, type ModelWeights, type WeightPlan } from './weights.js';
import { sequenceForm } from './forms.js';
import type { SsdForm } from './model-meta.js';
import { MS_DOMAIN } from '../graph/opset.js';
import { hybridOf } from './hybrid-config.js';
import { buildHybridModel } from './hybrid-lm.js';

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

type Mixer = (ctx: Ctx, w: LayerWeights, u: Value, s: LayerState) => { y: Value; state: LayerState };

/** Residual stack + final norm + head, shared by both branches; x is [B,L,D] or [B,D]. */
function layersAndHead(ctx: Ctx, w: ModelWeights, x0: Value, states: LayerState[], mixer: Mixer, lastOnly = false): Value[] {
  const { g, c } = ctx;
  let x = x0;
  const out: Value[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const lw = w.layers[i]!;
    const r = g.scope(`layers.${i}`, () => {
      const m = mixer(ctx, lw, rmsNorm(g, 'norm', x, lw.norm, c.normEps, ctx.tuning.rmsnorm === 'fused'), states[i]!);
      return { x: op.Add(g, x, m.y), state: m.state }; // residual in fp32
    });
    x = r.x;
    out.push(r.state.conv, r.state.ssm);
  }
  if (lastOnly) {
    // logits of the last position only: [B,L,D] → [B,D] → head → [B,1,V]
    const last = op.Squeeze(g, op.Slice(g, x, [-1], [op.END], [1]), [1]); // [B,D]
    const logits = linear(ctx, 'lm_head', rmsNorm(g, 'norm_f', last, w.normF, c.normEps, ctx.tuning.rmsnorm === 'fused'), w.lmHead); // [B,V]
    return [op.Unsqueeze(g, logits, [1]), ...out]; // [B,1,V]
  }
  const y = rmsNorm(g, 'norm_f', x, w.normF, c.normEps, ctx.tuning.rmsnorm === 'fused');
  const logits = linear(ctx, 'lm_head', y, w.lmHead);
  return [logits, ...out];
}

export function buildMamba2Model(c0: Mamba2Config, store: TensorStore, opts: BuildOptions = {}): ModelIR {
  if (hybridOf(c0)) return buildHybridModel(c0, store, opts); // Mamba-2 + attention layers / MLPs: hybrid-lm.ts
  const c: Mamba2Config = opts.chunkSize ? { ...c0, chunkSize: opts.chunkSize } : c0;
  const form = sequenceForm(opts.ssd ?? 'chunked');
  const plan = opts.weights ?? FP32_PLAN;
  const quantized = plan.dtype === 'int8' || plan.dtype === 'int4';
  const opsets = { ...form.opsets, ...(quantized ? { [MS_DOMAIN]: 1 } : {}) };
  const m = new ModelBuilder({ name: 'mamba2', opsets, producerVersion: opts.producerVersion, docString: opts.docString });
  const g = m.graph;
  const io = ioTable(c, { lastLogits: opts.logits === 'last', stepOnly: opts.paths === 'step' });
  const ids = g.input(IO_NAMES.inputIds, 'int64', io.inputs[0]!.shape); // [B,L]
  const past: LayerState[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const [conv, ssm] = [io.inputs[1 + 2 * i]!, io.inputs[2 + 2 * i]!];
    past.push({ conv: g.input(conv.name, conv.dtype, conv.shape), ssm: g.input(ssm.name, ssm.dtype, ssm.shape) });
  }
  const w = declareWeights(g, c, store, plan);
  const h = embed(g, w.embedding, ids); // [B,L,D] float32
  const bl = op.Shape(g, ids); // [2] = [B,L]
  const isStep = () => op.Squeeze(g, op.Equal(g, op.Slice(g, bl, [1], [2], [0]), g.constant('int64', [1], [1])), [0]); // bool
  const shapes = io.outputs.map((o) => o.shape);
  const paths = opts.paths ?? 'both';
  const step = (sg: GraphBuilder) => {
    const outs = layersAndHead(new Ctx(sg, c, undefined, opts.tuning), w, op.Squeeze(sg, h, [1]), past, mamba2MixerStep); // [B,D]
    return [op.Unsqueeze(sg, outs[0]!, [1]), ...outs.slice(1)]; // logits [B,1,V]
  };
  const seqMixer: Mixer = (ctx, lw, u, s) => mamba2Mixer(ctx, lw, u, s, form);
  const sequence = (sg: GraphBuilder) => layersAndHead(new Ctx(sg, c, bl, opts.tuning), w, h, past, seqMixer, opts.logits === 'last');
  const results = paths === 'both' ? op.If(g, isStep(), shapes, step, sequence) : paths === 'step' ? step(g) : sequence(g);
  io.outputs.forEach((o, k) => g.output(results[k]!, o.name, o.shape));
  m.metadata['mamba2_onnx.config'] = JSON.stringify(c);
  return m.finish();
}

export { B, L };
