/**
 * What a model family module provides (families/index.ts keeps the registry): the reader of its
 * config.json and the checkpoint names of every tensor of its layer plan (src/package/layers.ts).
 * Shapes are not the family's business: they follow from the plan (layer-tensors.ts).
 */
import type { CheckpointFormat, Mamba2Config } from '../../package/config.js';

export type JsonObject = { [k: string]: unknown };

/** Raises a ConfigError naming the file (the caller binds it) and the key. */
export type Fail = (key: string, detail: string) => never;

/** Model-level keys. lm_head is always `lm_head.weight` (weight-names.ts). */
export interface TopKeys {
  readonly embedding: string; // (V, D)
  readonly normF: string; // (D)
}

/** Attention layer tensors: split q/k/v/o (Bamba, Granite, Nemotron-H) or mamba_ssm MHA's fused in_proj (+conv, biases). */
export interface AttentionKeys {
  readonly q?: string; // (Hq·hd, D)
  readonly k?: string; // (Hkv·hd, D)
  readonly v?: string; // (Hkv·hd, D)
  readonly qkv?: string; // (qkvDim + mlpDim, D)  mamba_ssm in_proj, rows [q | k | v | mlp]
  readonly qkvBias?: string; // (qkvDim + mlpDim)
  readonly attnConv?: string; // (qkvDim, 1, Ka)
  readonly attnConvBias?: string; // (qkvDim)
  readonly attnOut: string; // (D, Hq·hd + mlpDim/2)
  readonly attnOutBias?: string; // (D)
}

/** An MLP's projections, by kind (layers.ts MlpKind): gate+up (swiglu), fc1 (gated, gate_up), up (relu2); down always. */
export interface MlpKeys {
  readonly gate?: string; // (I, D)
  readonly up?: string; // (I, D)
  readonly fc1?: string; // (2·I, D)
  readonly down: string; // (D, I)
}

/**
 * The experts' weights of one layer as the graph holds them: all experts stacked into one matrix
 * (weights.ts), named `name`, read from `parts`: a single checkpoint tensor holding every expert
 * ([E, rows, cols]: Granite's input_linear / output_linear) or one tensor per expert ([rows, cols]:
 * Nemotron-H's experts.{j}.up_proj / down_proj).
 */
export interface ExpertStack {
  readonly name: string;
  readonly parts: readonly string[];
}

export interface MoeKeys {
  readonly router: string; // (E, D)
  readonly scoreBias?: string; // (E)   sigmoid_grouped routers
  readonly latentIn?: string; // (Dl, D)
  readonly latentOut?: string; // (D, Dl)
  /** Each expert's up projection ([gate | up] rows for gate_up experts): (rows, Din) per expert. */
  readonly up: ExpertStack;
  /** Each expert's down projection: (Din, F) per expert. */
  readonly down: ExpertStack;
  /** The shared expert (an MLP of MoeConfig.shared's kind). */
  readonly shared?: MlpKeys;
}

/** Where an MLP sits in layer i: the body (Nemotron-H '-'), after the mixer, or the MoE's shared expert. */
export type MlpPlace = 'body' | 'after';

export interface CheckpointNames {
  readonly top: (c: Mamba2Config) => TopKeys;
  /** The pre-norm of layer i's body. */
  readonly norm: (c: Mamba2Config, i: number) => string;
  /** The prefix of layer i's Mamba-2 mixer (`${p}.in_proj.weight`, `${p}.conv1d.weight`, …). */
  readonly mamba: (c: Mamba2Config, i: number) => string;
  readonly attention?: (c: Mamba2Config, i: number) => AttentionKeys;
  readonly mlp?: (c: Mamba2Config, i: number, at: MlpPlace) => MlpKeys;
  readonly moe?: (c: Mamba2Config, i: number) => MoeKeys;
  /** The norm of the feed-forward after layer i's mixer. */
  readonly afterNorm?: (c: Mamba2Config, i: number) => string;
}

export interface Family {
  /** The registry key; hybrids record it as `hybrid.family`. */
  readonly name: 'mamba2' | 'mamba_ssm' | 'bamba' | 'granitemoehybrid' | 'nemotron_h';
  readonly format: CheckpointFormat;
  /** HF `model_type` (HF-format families). */
  readonly modelType?: string;
  /** HF `architectures[0]`. */
  readonly architecture?: string;
  /** config.json, already decoded, to a validated config (errors name `file` and the key). */
  readonly readConfig: (obj: JsonObject, file: string) => Mamba2Config;
  readonly names: CheckpointNames;
}
