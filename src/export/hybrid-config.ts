/**
 * Hybrid models: Mamba-2 layers mixed with attention layers, and optionally an MLP after every
 * mixer (docs/model.md §1.1 step 3, §1.3, §1.4, §4.2). Two checkpoint families:
 *
 *   bamba      HF `BambaForCausalLM` (`model_type: "bamba"`): `attn_layer_indices`, grouped-query
 *              attention with rotary embeddings on the first R = head_dim·partial_rotary_factor dims,
 *              a SwiGLU feed-forward (gate/up/down) in every layer.
 *   mamba_ssm  `MixerModel` with `attn_layer_idx` + `attn_cfg` (the `MHA` module: fused in_proj,
 *              optional depthwise conv over qkv without activation, rotary on the first
 *              `rotary_emb_dim` dims) and `d_intermediate` > 0 (a `GatedMLP` in every layer).
 *
 * The config of a hybrid is a `Mamba2Config` (its Mamba-2 layers) plus `hybrid` (this file's
 * `HybridSpec`); a pure Mamba-2 config has no `hybrid` key at all, so its JSON stays as it was.
 */
import type { Mamba2Config } from '../package/config.js';
import type { AttentionConfig, HybridConfig, HybridSpec, LayerKind } from '../package/layers.js';

/** Raises a ConfigError naming the file (config.ts passes it in). */
export type Fail = (key: string, detail: string) => never;

type Obj = Record<string, unknown>;
const show = (v: unknown): string => (v === undefined ? 'nothing (missing)' : JSON.stringify(v));
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function posInt(v: unknown, key: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 24) fail(key, `expected a positive integer, got ${show(v)}`);
  return v as number;
}

function bool(v: unknown, key: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(key, `expected true or false, got ${show(v)}`);
  return v as boolean;
}

function positive(v: unknown, key: string, fail: Fail): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(key, `expected a positive finite number, got ${show(v)}`);
  return v as number;
}

/** Layer kinds from a list of attention layer indices (each in [0, nLayer), no repeats). */
function kindsFrom(v: unknown, key: string, nLayer: number, fail: Fail): LayerKind[] {
  const list = v ?? [];
  if (!Array.isArray(list)) fail(key, `expected a list of layer indices, got ${show(v)}`);
  const kinds: LayerKind[] = Array.from({ length: nLayer }, () => 'mamba2');
  for (const i of list as unknown[]) {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= nLayer)
      fail(key, `expected layer indices in [0, ${nLayer}), got ${show(i)}`);
    if (kinds[i as number] === 'attention') fail(key, `expected distinct layer indices, got ${i} twice`);
    kinds[i as number] = 'attention';
  }
  return kinds;
}

/** Checks shared by both families: GQA head counts and the rotary width. */
function checkAttention(a: AttentionConfig, keys: { heads: string; kv: string; rotary: string }, fail: Fail): AttentionConfig {
  if (a.nHeads % a.nKvHeads !== 0) fail(keys.kv, `expected a divisor of the ${a.nHeads} query heads, got ${a.nKvHeads}`);
  if (a.rotaryDim % 2 !== 0 || a.rotaryDim > a.headDim) {
    fail(keys.rotary, `expected an even rotary width ≤ head_dim ${a.headDim}, got ${a.rotaryDim}`);
  }
  return Object.freeze(a);
}

/**
 * Bamba (HF `BambaConfig`): attention and MLP fields on top of the Mamba-2 part config.ts already
 * read. HF hard-codes attention_bias = mlp_bias = False and partial_rotary_factor 0.5; rotary dims
 * R = int(head_dim·factor), rope_theta from `rope_parameters` (HF 5.x) or the top level.
 */
export function bambaHybrid(obj: Obj, base: Mamba2Config, fail: Fail): HybridConfig {
  const layers = kindsFrom(obj.attn_layer_indices, 'attn_layer_indices', base.nLayer, fail);
  const heads = posInt(obj.num_attention_heads ?? 32, 'num_attention_heads', fail);
  const kv = posInt(obj.num_key_value_heads ?? heads, 'num_key_value_heads', fail);
  if (base.dModel % heads !== 0 && obj.head_dim === undefined) {
    fail('num_attention_heads', `expected a divisor of hidden_size ${base.dModel} (head_dim = hidden_size / heads), got ${heads}`);
  }
  const headDim = posInt(obj.head_dim ?? base.dModel / heads, 'head_dim', fail);
  const rope = obj.rope_parameters ?? {};
  if (!isObj(rope)) fail('rope_parameters', `expected an object, got ${show(rope)}`);
  const ropeType = (rope as Obj).rope_type ?? (rope as Obj).type ?? 'default';
  if (ropeType !== 'default') fail('rope_parameters.rope_type', `expected "default", got ${show(ropeType)}: RoPE scaling is not supported`);
  const factor = (rope as Obj).partial_rotary_factor ?? obj.partial_rotary_factor ?? 0.5;
  if (typeof factor !== 'number' || !(factor > 0) || factor > 1)
    fail('partial_rotary_factor', `expected a number in (0, 1], got ${show(factor)}`);
  const theta = positive((rope as Obj).rope_theta ?? obj.rope_theta ?? 10000, 'rope_parameters.rope_theta', fail);
  const attention = checkAttention(
    {
      nHeads: heads,
      nKvHeads: kv,
      headDim,
      rotaryDim: Math.floor(headDim * (factor as number)),
      ropeTheta: theta,
      convKernel: 0,
      qkvBias: false,
      outBias: false,
      softmaxScale: 1 / Math.sqrt(headDim),
      mlpDim: 0,
    },
    { heads: 'num_attention_heads', kv: 'num_key_value_heads', rotary: 'partial_rotary_factor' },
    fail,
  );
  const mlp = Object.freeze({
    kind: 'swiglu' as const,
    hidden: posInt(obj.intermediate_size ?? 14336, 'intermediate_size', fail),
    bias: false,
  });
  const hybrid: HybridSpec = Object.freeze({ family: 'bamba', layers: Object.freeze(layers), attention, mlp });
  return Object.freeze({ ...base, hybrid });
}

const ATTN_CFG_KEYS = new Set([
  'num_heads',
  'num_heads_kv',
  'head_dim',
  'mlp_dim',
  'qkv_proj_bias',
  'out_proj_bias',
  'softmax_scale',
  'causal',
  'd_conv',
  'rotary_emb_dim',
  'rotary_emb_base',
  'rotary_emb_interleaved',
]);

/** mamba_ssm `MHA(**attn_cfg)` with its constructor defaults (docs/model.md §1.4, §6.20: always read attn_cfg). */
function mhaConfig(cfg: Obj, dModel: number, fail: Fail): AttentionConfig {
  const k = (name: string): string => `attn_cfg.${name}`;
  for (const key of Object.keys(cfg)) {
    if (!ATTN_CFG_KEYS.has(key)) fail(k(key), `unknown MHA argument (expected one of ${[...ATTN_CFG_KEYS].join(', ')})`);
  }
  const heads = posInt(cfg.num_heads, k('num_heads'), fail);
  const kv = posInt(cfg.num_heads_kv ?? heads, k('num_heads_kv'), fail);
  if (cfg.head_dim === undefined && dModel % heads !== 0)
    fail(k('num_heads'), `expected a divisor of d_model ${dModel} when head_dim is absent, got ${heads}`);
  const headDim = posInt(cfg.head_dim ?? dModel / heads, k('head_dim'), fail);
  if (cfg.causal !== true) {
    fail(
      k('causal'),
      `expected true, got ${show(cfg.causal)}: a language model's attention is causal (MHA's default is False; published configs set true)`,
    );
  }
  if ((cfg.rotary_emb_interleaved ?? false) !== false)
    fail(k('rotary_emb_interleaved'), `expected false, got ${show(cfg.rotary_emb_interleaved)}: interleaved rotary is not supported`);
  const rotary = cfg.rotary_emb_dim ?? 0;
  if (typeof rotary !== 'number' || !Number.isInteger(rotary) || rotary < 0)
    fail(k('rotary_emb_dim'), `expected an integer ≥ 0, got ${show(rotary)}`);
  const conv = cfg.d_conv ?? 0;
  if (typeof conv !== 'number' || !Number.isInteger(conv) || conv < 0 || conv === 1 || conv > 64) {
    fail(k('d_conv'), `expected 0 (no conv) or a width in [2, 64], got ${show(conv)}`);
  }
  const mlp = cfg.mlp_dim ?? 0;
  if (typeof mlp !== 'number' || !Number.isInteger(mlp) || mlp < 0) fail(k('mlp_dim'), `expected an integer ≥ 0, got ${show(mlp)}`);
  const scale = cfg.softmax_scale ?? null;
  return checkAttention(
    {
      nHeads: heads,
      nKvHeads: kv,
      headDim,
      rotaryDim: rotary as number,
      ropeTheta: positive(cfg.rotary_emb_base ?? 10000, k('rotary_emb_base'), fail),
      convKernel: conv as number,
      qkvBias: bool(cfg.qkv_proj_bias ?? true, k('qkv_proj_bias'), fail),
      outBias: bool(cfg.out_proj_bias ?? true, k('out_proj_bias'), fail),
      softmaxScale: scale === null ? 1 / Math.sqrt(headDim) : positive(scale, k('softmax_scale'), fail),
      mlpDim: Math.ceil((mlp as number) / 256) * 256,
    },
    { heads: k('num_heads'), kv: k('num_heads_kv'), rotary: k('rotary_emb_dim') },
    fail,
  );
}

/**
 * mamba_ssm `MambaConfig` hybrid fields: `attn_layer_idx` + `attn_cfg` and `d_intermediate`
 * (GatedMLP hidden = round_up(d_intermediate, 128)). Returns `base` itself when the model has
 * neither, so a pure Mamba-2 config stays exactly as it was.
 */
export function mambaSsmHybrid(obj: Obj, base: Mamba2Config, fail: Fail): Mamba2Config {
  const layers = kindsFrom(obj.attn_layer_idx, 'attn_layer_idx', base.nLayer, fail);
  const dInter = obj.d_intermediate ?? 0;
  if (typeof dInter !== 'number' || !Number.isInteger(dInter) || dInter < 0 || dInter > 2 ** 24) {
    fail('d_intermediate', `expected an integer ≥ 0, got ${show(dInter)}`);
  }
  const hasAttention = layers.includes('attention');
  if (!hasAttention && dInter === 0) return base;
  const cfg = obj.attn_cfg ?? {};
  if (!isObj(cfg)) fail('attn_cfg', `expected an object, got ${show(cfg)}`);
  const hybrid: HybridSpec = Object.freeze({
    family: 'mamba_ssm',
    layers: Object.freeze(layers),
    ...(hasAttention ? { attention: mhaConfig(cfg as Obj, base.dModel, fail) } : {}),
    ...(dInter > 0
      ? { mlp: Object.freeze({ kind: 'gated' as const, hidden: Math.ceil((dInter as number) / 128) * 128, bias: false }) }
      : {}),
  });
  return Object.freeze({ ...base, hybrid });
}
