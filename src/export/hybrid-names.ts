/**
 * Checkpoint keys and shapes of the hybrid parts (docs/model.md §4.2; HF modeling_bamba): attention layers,
 * the MLP after every mixer, and where a family keeps its Mamba-2 layers.
 *
 *   mamba_ssm  backbone.layers.i.{norm, mixer.*}          attention: mixer.in_proj / conv1d / out_proj
 *              backbone.layers.i.{norm2, mlp.fc1, mlp.fc2} (GatedMLP)
 *   bamba      model.layers.i.{input_layernorm, mamba.*}  attention: self_attn.{q,k,v,o}_proj
 *              model.layers.i.{pre_ff_layernorm, feed_forward.{gate,up,down}_proj}
 *              model.embed_tokens, model.final_layernorm, lm_head
 */
import type { Mamba2Config } from '../package/config.js';
import { type AttentionConfig, attentionOf, hybridOf, layerKinds, qkvDim } from '../package/layers.js';

/** Model-level keys of a Bamba checkpoint. */
export const BAMBA_TOP = { embedding: 'model.embed_tokens.weight', normF: 'model.final_layernorm.weight' } as const;

/** Where layer i keeps its pre-mixer norm and its mixer (Mamba-2 or attention). */
export function layerPrefix(c: Mamba2Config, i: number): { norm: string; mixer: string } {
  if (hybridOf(c)?.family === 'bamba') {
    const p = `model.layers.${i}`;
    return { norm: `${p}.input_layernorm.weight`, mixer: layerKinds(c)[i] === 'attention' ? `${p}.self_attn` : `${p}.mamba` };
  }
  return { norm: `backbone.layers.${i}.norm.weight`, mixer: `backbone.layers.${i}.mixer` };
}

/** Attention layer tensors: Bamba's split q/k/v/o or mamba_ssm MHA's fused in_proj (+conv, biases). */
export interface AttentionKeys {
  readonly norm: string; // (D)
  readonly q?: string; // (Hq·hd, D)          bamba
  readonly k?: string; // (Hkv·hd, D)         bamba
  readonly v?: string; // (Hkv·hd, D)         bamba
  readonly qkv?: string; // (qkvDim + mlpDim, D)  mamba_ssm in_proj, rows [q | k | v | mlp]
  readonly qkvBias?: string; // (qkvDim + mlpDim)
  readonly attnConv?: string; // (qkvDim, 1, Ka)
  readonly attnConvBias?: string; // (qkvDim)
  readonly attnOut: string; // (D, Hq·hd + mlpDim/2)
  readonly attnOutBias?: string; // (D)
}

/** The MLP after the mixer: Bamba's gate/up/down or GatedMLP's fc1/fc2. */
export interface MlpKeys {
  readonly mlpNorm: string; // (D)
  readonly gate?: string; // (I, D)  bamba
  readonly up?: string; // (I, D)    bamba
  readonly fc1?: string; // (2·I, D) mamba_ssm, rows [value | gate]
  readonly down: string; // (D, I)   bamba down_proj / mamba_ssm fc2
}

export type HybridRole = Exclude<keyof AttentionKeys, 'norm'> | 'attnNorm' | keyof MlpKeys;

export interface HybridTensor {
  readonly key: string;
  readonly shape: readonly number[];
  readonly role: HybridRole;
  readonly layer: number;
}

export function attentionKeys(c: Mamba2Config, i: number): AttentionKeys {
  const a = attentionOf(c);
  const { norm, mixer: m } = layerPrefix(c, i);
  if (hybridOf(c)?.family === 'bamba') {
    return { norm, q: `${m}.q_proj.weight`, k: `${m}.k_proj.weight`, v: `${m}.v_proj.weight`, attnOut: `${m}.o_proj.weight` };
  }
  return {
    norm,
    qkv: `${m}.in_proj.weight`,
    ...(a.qkvBias ? { qkvBias: `${m}.in_proj.bias` } : {}),
    ...(a.convKernel > 0 ? { attnConv: `${m}.conv1d.weight`, attnConvBias: `${m}.conv1d.bias` } : {}), // nn.Conv1d: bias on
    attnOut: `${m}.out_proj.weight`,
    ...(a.outBias ? { attnOutBias: `${m}.out_proj.bias` } : {}),
  };
}

/** MLP keys of layer i, or undefined when the model has no MLP. */
export function mlpKeys(c: Mamba2Config, i: number): MlpKeys | undefined {
  const h = hybridOf(c);
  if (!h?.mlp) return undefined;
  if (h.family === 'bamba') {
    const p = `model.layers.${i}`;
    const f = `${p}.feed_forward`;
    return {
      mlpNorm: `${p}.pre_ff_layernorm.weight`,
      gate: `${f}.gate_proj.weight`,
      up: `${f}.up_proj.weight`,
      down: `${f}.down_proj.weight`,
    };
  }
  const p = `backbone.layers.${i}`;
  return { mlpNorm: `${p}.norm2.weight`, fc1: `${p}.mlp.fc1.weight`, down: `${p}.mlp.fc2.weight` };
}

function attentionShapes(a: AttentionConfig, D: number): Record<Exclude<keyof AttentionKeys, 'norm'>, readonly number[]> {
  const [q, kv] = [a.nHeads * a.headDim, a.nKvHeads * a.headDim];
  return {
    q: [q, D],
    k: [kv, D],
    v: [kv, D],
    qkv: [qkvDim(a) + a.mlpDim, D],
    qkvBias: [qkvDim(a) + a.mlpDim],
    attnConv: [qkvDim(a), 1, a.convKernel],
    attnConvBias: [qkvDim(a)],
    attnOut: [D, q + a.mlpDim / 2],
    attnOutBias: [D],
  };
}

/** The hybrid tensors of layer i in model order: attention tensors (attention layers), then the MLP's. */
export function hybridLayerTensors(c: Mamba2Config, i: number): HybridTensor[] {
  const h = hybridOf(c);
  if (!h) return [];
  const out: HybridTensor[] = [];
  if (h.layers[i] === 'attention') {
    const shapes = attentionShapes(attentionOf(c), c.dModel);
    for (const [role, key] of Object.entries(attentionKeys(c, i)) as [keyof AttentionKeys, string][]) {
      out.push(role === 'norm' ? { key, shape: [c.dModel], role: 'attnNorm', layer: i } : { key, shape: shapes[role], role, layer: i });
    }
  }
  const mk = mlpKeys(c, i);
  if (mk && h.mlp) {
    const I = h.mlp.hidden;
    const shapes: Record<keyof MlpKeys, readonly number[]> = {
      mlpNorm: [c.dModel],
      gate: [I, c.dModel],
      up: [I, c.dModel],
      fc1: [2 * I, c.dModel],
      down: [c.dModel, I],
    };
    for (const [role, key] of Object.entries(mk) as [keyof MlpKeys, string][]) out.push({ key, shape: shapes[role], role, layer: i });
  }
  return out;
}
