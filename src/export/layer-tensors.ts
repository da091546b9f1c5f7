/**
 * The tensors of a hybrid layer's non-Mamba parts, in model order, with their shapes: attention,
 * MLP and MoE bodies and the feed-forward after a mixer (src/package/layers.ts). The names come from
 * the layer's family (families/*.ts); the shapes follow from the plan alone.
 *
 *   attention   q (Hq·hd, D)  k, v (Hkv·hd, D)  o (D, Hq·hd) — or MHA's fused in_proj (+conv, biases)
 *   mlp         swiglu gate, up (I, D) · gated / gate_up fc1 (2I, D) · relu2 up (I, D); down (D, I)
 *   moe         router (E, D), e_score_correction_bias (E), latent in (Dl, D) / out (D, Dl),
 *               experts: up (E, R, Din) fused or E × (R, Din), down (E, Din, F) fused or E × (Din, F)
 *               with R = 2F (gate_up) or F (relu2), Din = Dl or D; the shared expert as an mlp
 */
import type { Mamba2Config } from '../package/config.js';
import {
  type AttentionConfig,
  attentionOf,
  ffnAfter,
  hybridOf,
  isMixer,
  layerKinds,
  type MlpConfig,
  type MoeConfig,
  mlpOf,
  moeOf,
  qkvDim,
} from '../package/layers.js';
import { familyOf } from './families/index.js';
import type { AttentionKeys, CheckpointNames, MlpKeys, MlpPlace, MoeKeys } from './families/types.js';

export type { AttentionKeys, MlpKeys, MoeKeys } from './families/types.js';

export type HybridRole =
  | Exclude<keyof AttentionKeys, 'norm'>
  | 'attnNorm'
  | 'mlpNorm'
  | keyof MlpKeys
  | 'router'
  | 'scoreBias'
  | 'latentIn'
  | 'latentOut'
  | 'expertUp'
  | 'expertDown';

export interface HybridTensor {
  readonly key: string;
  readonly shape: readonly number[];
  readonly role: HybridRole;
  readonly layer: number;
}

function names<K extends keyof CheckpointNames>(c: Mamba2Config, part: K): NonNullable<CheckpointNames[K]> {
  const f = familyOf(c);
  const fn = f.names[part];
  if (!fn) throw new RangeError(`${part}: the ${f.name} family has no ${part} tensors`);
  return fn as NonNullable<CheckpointNames[K]>;
}

/** Attention layer i: its pre-norm and the attention weights. */
export function attentionKeys(c: Mamba2Config, i: number): AttentionKeys & { readonly norm: string } {
  return { norm: familyOf(c).names.norm(c, i), ...names(c, 'attention')(c, i) };
}

/** The dense MLP of layer i at `at`, or undefined when the layer has none there. */
export function mlpKeys(c: Mamba2Config, i: number, at: MlpPlace): MlpKeys | undefined {
  const kind = layerKinds(c)[i];
  const there = at === 'body' ? kind === 'mlp' : kind !== undefined && isMixer(kind) && ffnAfter(c).includes('mlp');
  return there ? names(c, 'mlp')(c, i, at) : undefined;
}

/** The experts of layer i (its body or after its mixer), or undefined when it has none. */
export function moeKeys(c: Mamba2Config, i: number): MoeKeys | undefined {
  const kind = layerKinds(c)[i];
  const there = kind === 'moe' || (kind !== undefined && isMixer(kind) && ffnAfter(c).includes('moe'));
  return there ? names(c, 'moe')(c, i) : undefined;
}

/** The norm before the feed-forward after layer i's mixer, or undefined when nothing follows it. */
export function afterNormKey(c: Mamba2Config, i: number): string | undefined {
  const kind = layerKinds(c)[i];
  return kind !== undefined && isMixer(kind) && ffnAfter(c).length > 0 ? names(c, 'afterNorm')(c, i) : undefined;
}

function attentionShapes(a: AttentionConfig, D: number): Record<keyof AttentionKeys, readonly number[]> {
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

function mlpTensors(m: MlpConfig, k: MlpKeys, D: number, layer: number): HybridTensor[] {
  const I = m.hidden;
  const shapes: Record<keyof MlpKeys, readonly number[]> = { gate: [I, D], up: [I, D], fc1: [2 * I, D], down: [D, I] };
  return (Object.entries(k) as [keyof MlpKeys, string][]).map(([role, key]) => ({ key, shape: shapes[role], role, layer }));
}

function moeTensors(m: MoeConfig, k: MoeKeys, D: number, layer: number): HybridTensor[] {
  const Din = m.latent > 0 ? m.latent : D;
  const R = m.expert === 'gate_up' ? 2 * m.hidden : m.hidden;
  const E = m.nExperts;
  const out: HybridTensor[] = [{ key: k.router, shape: [E, D], role: 'router', layer }];
  if (k.scoreBias) out.push({ key: k.scoreBias, shape: [E], role: 'scoreBias', layer });
  if (k.latentIn) out.push({ key: k.latentIn, shape: [Din, D], role: 'latentIn', layer });
  const stack = (parts: readonly string[], rows: number, cols: number, role: HybridRole): void => {
    for (const key of parts) out.push({ key, shape: parts.length === 1 ? [E, rows, cols] : [rows, cols], role, layer });
  };
  stack(k.up.parts, R, Din, 'expertUp');
  stack(k.down.parts, Din, m.hidden, 'expertDown');
  if (k.latentOut) out.push({ key: k.latentOut, shape: [D, Din], role: 'latentOut', layer });
  if (k.shared && m.shared) out.push(...mlpTensors(m.shared, k.shared, D, layer));
  return out;
}

/**
 * The hybrid tensors of layer i in model order: the body's (attention, mlp or moe; the pre-norm
 * included except for Mamba-2 layers, which weight-names.ts lists), then the feed-forward after a
 * mixer (its norm, the MLP, the experts).
 */
export function hybridLayerTensors(c: Mamba2Config, i: number): HybridTensor[] {
  const h = hybridOf(c);
  if (!h) return [];
  const D = c.dModel;
  const out: HybridTensor[] = [];
  const kind = h.layers[i];
  if (kind === 'attention') {
    const shapes = attentionShapes(attentionOf(c), D);
    for (const [role, key] of Object.entries(attentionKeys(c, i)) as [keyof AttentionKeys | 'norm', string][]) {
      out.push(role === 'norm' ? { key, shape: [D], role: 'attnNorm', layer: i } : { key, shape: shapes[role], role, layer: i });
    }
  } else if (kind === 'mlp' || kind === 'moe') {
    out.push({ key: familyOf(c).names.norm(c, i), shape: [D], role: 'mlpNorm', layer: i });
  }
  const norm = afterNormKey(c, i);
  if (norm) out.push({ key: norm, shape: [D], role: 'mlpNorm', layer: i });
  for (const at of ['body', 'after'] as const) {
    const mk = mlpKeys(c, i, at);
    if (mk) out.push(...mlpTensors(mlpOf(c), mk, D, i));
  }
  const ek = moeKeys(c, i);
  if (ek) out.push(...moeTensors(moeOf(c), ek, D, i));
  return out;
}
