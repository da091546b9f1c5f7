/**
 * The layer plan of an exported model, as the package contract records it: which layers are
 * Mamba-2 mixers and which are attention, and the attention and MLP shapes a hybrid adds. A pure
 * Mamba-2 config has no `hybrid` key at all (its JSON stays as it was); a hybrid's config is a
 * `Mamba2Config` plus `hybrid` (`HybridSpec`). Reading these from a checkpoint's config is the
 * exporter's job (export/hybrid-config.ts).
 */
import type { Mamba2Config } from './config.js';

export type LayerKind = 'mamba2' | 'attention';
export type HybridFamily = 'bamba' | 'mamba_ssm';
/** swiglu: down(silu(gate(x))·up(x)) with separate gate/up (Bamba); gated: fc1 → [value, gate] → fc2(value·silu(gate)) (GatedMLP, model.md §6.15). */
export type MlpKind = 'swiglu' | 'gated';

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
  readonly softmaxScale: number;
  /** mamba_ssm MHA's own MLP branch (mlp_dim rounded up to 256; 0 = none). */
  readonly mlpDim: number;
}

export interface MlpConfig {
  readonly kind: MlpKind;
  readonly hidden: number;
  readonly bias: boolean;
}

export interface HybridSpec {
  readonly family: HybridFamily;
  /** One kind per layer. */
  readonly layers: readonly LayerKind[];
  /** Present when some layer is an attention layer. */
  readonly attention?: AttentionConfig;
  /** Present when every layer has an MLP after its mixer. */
  readonly mlp?: MlpConfig;
}

export interface HybridConfig extends Mamba2Config {
  readonly hybrid: HybridSpec;
}

/** The hybrid part of a config, or undefined for a pure Mamba-2 model. */
export function hybridOf(c: Mamba2Config): HybridSpec | undefined {
  return (c as Partial<HybridConfig>).hybrid;
}

/** The kind of every layer ('mamba2' throughout for pure models). */
export function layerKinds(c: Mamba2Config): readonly LayerKind[] {
  return hybridOf(c)?.layers ?? Array.from({ length: c.nLayer }, () => 'mamba2' as const);
}

/** The attention config of a hybrid that has attention layers. */
export function attentionOf(c: Mamba2Config): AttentionConfig {
  const a = hybridOf(c)?.attention;
  if (!a) throw new RangeError('attention: this model has no attention layers');
  return a;
}

/** Channels of the fused q|k|v projection (and of the MHA conv): hd·(Hq + 2·Hkv). */
export const qkvDim = (a: AttentionConfig): number => a.headDim * (a.nHeads + 2 * a.nKvHeads);
