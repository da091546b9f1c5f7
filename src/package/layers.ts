/**
 * The layer plan of an exported model, as the package contract records it (mamba2-onnx.json,
 * `config.hybrid`). Every layer is a pre-norm residual block,
 *
 *   x ← x + r·body(RMSNorm(x))                body: a mixer ('mamba2' | 'attention', with a state)
 *                                                   or a feed-forward ('mlp' | 'moe', stateless)
 *   x ← x + r·Σ after(RMSNorm₂(x))            mixer layers only, when `after` is not empty: the sum of
 *                                                   the listed feed-forwards on one normalised input
 *
 * with r the residual multiplier (1 unless `scalars` says otherwise). The embedding output is
 * multiplied by `scalars.embedding` and the logits divided by `scalars.logitsDivisor`.
 *
 * A pure Mamba-2 config has no `hybrid` key at all (its JSON stays as it was); a hybrid's config is
 * a `Mamba2Config` (its Mamba-2 layers' sizes) plus `hybrid` (`HybridSpec`). Packages written
 * before `after`, `moe` and `scalars` existed parse unchanged: without `after`, a model with `mlp`
 * has that MLP after every layer (their only plan). Reading these from a checkpoint's config is the
 * exporter's job (src/export/families/).
 */
import type { Mamba2Config } from './config.js';

export type MixerKind = 'mamba2' | 'attention';
export type FfnKind = 'mlp' | 'moe';
/** The body of a layer's block. */
export type LayerKind = MixerKind | FfnKind;
export type HybridFamily = 'bamba' | 'mamba_ssm' | 'granitemoehybrid' | 'nemotron_h';
/**
 * swiglu: down(silu(gate(x))·up(x)) with separate gate/up (Bamba);
 * gated: fc1 → [value | gate] → fc2(value·silu(gate)) (mamba_ssm GatedMLP, model.md §6.15);
 * gate_up: input_linear → [gate | up] → output_linear(silu(gate)·up) (Granite's shared MLP and experts);
 * relu2: down(relu(up(x))²) (Nemotron-H).
 */
export type MlpKind = 'swiglu' | 'gated' | 'gate_up' | 'relu2';

export interface AttentionConfig {
  readonly nHeads: number; // Hq
  readonly nKvHeads: number; // Hkv (Hq % Hkv == 0; q head h reads kv head h / (Hq/Hkv))
  readonly headDim: number; // hd
  /** R: rotary on the first R dims of each q/k head, GPT-NeoX rotate-half (0 = no rotary). */
  readonly rotaryDim: number;
  readonly ropeTheta: number;
  /** Ka: depthwise causal conv over qkv without activation (mamba_ssm `d_conv`; 0 = none). */
  readonly convKernel: number;
  readonly qkvBias: boolean;
  readonly outBias: boolean;
  /** The factor on q·kᵀ before the softmax (1/√hd, or Granite's attention_multiplier). */
  readonly softmaxScale: number;
  /** mamba_ssm MHA's own MLP branch (mlp_dim rounded up to 256; 0 = none). */
  readonly mlpDim: number;
}

export interface MlpConfig {
  readonly kind: MlpKind;
  readonly hidden: number;
  readonly bias: boolean;
}

/**
 * A routed mixture of experts (docs/model.md §1.5, §1.6). The router is a bias-free linear D → E
 * in float32, then:
 *   softmax_topk     top-k of the logits, softmax over those k (Granite);
 *   sigmoid_grouped  s = sigmoid(logits); choice scores s + e_score_correction_bias; the best
 *                    `topkGroup` of `nGroup` groups (a group's score: the sum of its best two);
 *                    top-k within them; weights s at the chosen experts, divided by their sum
 *                    (+1e-20) when `normTopK`; times `scale` (Nemotron-H).
 * Ties go to the lower expert index (ONNX TopK). Each expert is an MLP of `expert` kind and width
 * `hidden`, on x or, with `latent` > 0, on a projection of x to `latent` dims (projected back after
 * the weighted sum). `shared` is an MLP every token goes through, added to the result.
 */
export interface MoeConfig {
  readonly nExperts: number; // E
  readonly topK: number; // k
  readonly hidden: number; // F (each expert)
  readonly expert: 'gate_up' | 'relu2';
  readonly router: 'softmax_topk' | 'sigmoid_grouped';
  readonly nGroup: number;
  readonly topkGroup: number;
  readonly normTopK: boolean;
  readonly scale: number;
  readonly scoreBias: boolean;
  readonly latent: number; // Dl (0 = none)
  readonly shared?: MlpConfig;
}

/** Granite's muP-style multipliers (1 = none). */
export interface ModelScalars {
  readonly embedding: number;
  readonly residual: number;
  readonly logitsDivisor: number;
}

export interface HybridSpec {
  readonly family: HybridFamily;
  /** The body of each layer's block. */
  readonly layers: readonly LayerKind[];
  /** Present when some layer is an attention layer. */
  readonly attention?: AttentionConfig;
  /** The dense MLP: the body of 'mlp' layers and/or an `after` part. */
  readonly mlp?: MlpConfig;
  /** The routed experts: the body of 'moe' layers and/or an `after` part. */
  readonly moe?: MoeConfig;
  /** What follows the body of every mixer layer (see the module doc); absent: ['mlp'] when `mlp` is set. */
  readonly after?: readonly FfnKind[];
  readonly scalars?: ModelScalars;
}

export interface HybridConfig extends Mamba2Config {
  readonly hybrid: HybridSpec;
}

/** The hybrid part of a config, or undefined for a pure Mamba-2 model. */
export function hybridOf(c: Mamba2Config): HybridSpec | undefined {
  return (c as Partial<HybridConfig>).hybrid;
}

/** The body of every layer ('mamba2' throughout for pure models). */
export function layerKinds(c: Mamba2Config): readonly LayerKind[] {
  return hybridOf(c)?.layers ?? Array.from({ length: c.nLayer }, () => 'mamba2' as const);
}

/** Mixers keep a state between calls; feed-forward bodies do not. */
export const isMixer = (k: LayerKind): k is MixerKind => k === 'mamba2' || k === 'attention';

/** Layers that keep a state (every layer of a pure model). */
export function statefulLayers(c: Mamba2Config): number[] {
  return layerKinds(c).flatMap((k, i) => (isMixer(k) ? [i] : []));
}

/** The feed-forwards after the body of mixer layers (module doc: older packages imply ['mlp']). */
export function ffnAfter(c: Mamba2Config): readonly FfnKind[] {
  const h = hybridOf(c);
  return h?.after ?? (h?.mlp ? ['mlp'] : []);
}

const ONE: ModelScalars = Object.freeze({ embedding: 1, residual: 1, logitsDivisor: 1 });
export const scalarsOf = (c: Mamba2Config): ModelScalars => hybridOf(c)?.scalars ?? ONE;

/** The attention config of a hybrid that has attention layers. */
export function attentionOf(c: Mamba2Config): AttentionConfig {
  const a = hybridOf(c)?.attention;
  if (!a) throw new RangeError('attention: this model has no attention layers');
  return a;
}

/** The dense MLP config of a hybrid that has one. */
export function mlpOf(c: Mamba2Config): MlpConfig {
  const m = hybridOf(c)?.mlp;
  if (!m) throw new RangeError('mlp: this model has no dense MLP');
  return m;
}

/** The mixture-of-experts config of a hybrid that has one. */
export function moeOf(c: Mamba2Config): MoeConfig {
  const m = hybridOf(c)?.moe;
  if (!m) throw new RangeError('moe: this model has no mixture of experts');
  return m;
}

/** Channels of the fused q|k|v projection (and of the MHA conv): hd·(Hq + 2·Hkv). */
export const qkvDim = (a: AttentionConfig): number => a.headDim * (a.nHeads + 2 * a.nKvHeads);
