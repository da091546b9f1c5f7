/**
 * The original state-spaces/mamba checkpoints (`MambaLMHeadModel`, config.json without model_type):
 * pure Mamba-2 models and the `mamba2attn` hybrids (docs/model.md §1.1-§1.4, §4.1, §4.3).
 *
 *   config   MambaConfig: vocab padded up to pad_vocab_size_multiple (default 8), `ssm_cfg` with
 *            Mamba2's constructor defaults, tie_embeddings default true; hybrids add
 *            `attn_layer_idx` + `attn_cfg` (the MHA module: fused in_proj, optional depthwise conv
 *            over qkv without activation, rotary on the first `rotary_emb_dim` dims) and
 *            `d_intermediate` > 0 (a GatedMLP after every mixer, hidden rounded up to 128).
 *   names    backbone.embedding, backbone.layers.i.{norm, mixer.*}, attention: mixer.in_proj / conv1d /
 *            out_proj; backbone.layers.i.{norm2, mlp.fc1, mlp.fc2}; backbone.norm_f, lm_head.
 */
import type { Mamba2Config } from '../../package/config.js';
import type { AttentionConfig, HybridSpec } from '../../package/layers.js';
import { attentionOf } from '../../package/layers.js';
import {
  asObject,
  checkActivation,
  ConfigError,
  failIn,
  type KeyNames,
  pick,
  type RawFields,
  show,
  validateMamba2,
} from '../config-core.js';
import { bool, checkAttention, isObj, kindsFromIndices, positive, posInt } from './fields.js';
import type { Fail, Family, JsonObject } from './types.js';

const SSM_KEYS: KeyNames = {
  dState: 'd_state',
  dConv: 'd_conv',
  expand: 'expand',
  headDim: 'headdim',
  nGroups: 'ngroups',
  chunkSize: 'chunk_size',
  dtLimit: 'dt_limit',
  dHasHdim: 'D_has_hdim',
  rmsNorm: 'rmsnorm',
  normBeforeGate: 'norm_before_gate',
  bias: 'bias',
  convBias: 'conv_bias',
  dSsm: 'd_ssm',
};
const TOP_KEYS: KeyNames = {
  dModel: 'd_model',
  nLayer: 'n_layer',
  tieEmbeddings: 'tie_embeddings',
  normEps: 'norm_epsilon',
  residualInFp32: 'residual_in_fp32',
};

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
function mhaConfig(cfg: JsonObject, dModel: number, fail: Fail): AttentionConfig {
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
 * The hybrid fields: `attn_layer_idx` + `attn_cfg` and `d_intermediate` (GatedMLP hidden =
 * round_up(d_intermediate, 128)). Returns `base` itself when the model has neither, so a pure
 * Mamba-2 config stays exactly as it was.
 */
function hybridPart(obj: JsonObject, base: Mamba2Config, fail: Fail): Mamba2Config {
  const layers = kindsFromIndices(obj.attn_layer_idx, 'attn_layer_idx', base.nLayer, fail);
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
    ...(hasAttention ? { attention: mhaConfig(cfg as JsonObject, base.dModel, fail) } : {}),
    ...(dInter > 0
      ? { mlp: Object.freeze({ kind: 'gated' as const, hidden: Math.ceil((dInter as number) / 128) * 128, bias: false }) }
      : {}),
  });
  return Object.freeze({ ...base, hybrid });
}

function readConfig(obj: JsonObject, file: string): Mamba2Config {
  if (typeof obj.model_type === 'string') {
    const got = show(obj.model_type);
    throw new ConfigError(file, 'model_type', `expected none in a mamba_ssm config.json, got ${got}: use format "hf"`);
  }
  if (obj.rms_norm !== undefined && obj.rms_norm !== true) {
    const detail = `expected true, got ${show(obj.rms_norm)}: LayerNorm blocks are not supported`;
    throw new ConfigError(file, 'rms_norm', detail);
  }
  const ssm = asObject(obj.ssm_cfg ?? {}, file, 'ssm_cfg');
  const layer = ssm.layer ?? 'Mamba1'; // mamba_ssm's create_block default
  if (layer !== 'Mamba2') {
    throw new ConfigError(
      file,
      'ssm_cfg.layer',
      `expected "Mamba2", got ${show(layer)}` +
        `${ssm.layer === undefined ? ' (the default when absent)' : ''}: only Mamba-2 models are supported`,
    );
  }
  checkActivation(ssm, 'activation', file, 'ssm_cfg.');

  const top = pick(obj, TOP_KEYS);
  const inner = pick(ssm, SSM_KEYS, 'ssm_cfg.');
  const names: KeyNames = { ...top.names, ...inner.names, vocabSize: 'vocab_size', realVocabSize: 'vocab_size' };
  const vocab = obj.vocab_size ?? 50277;
  const multiple = obj.pad_vocab_size_multiple ?? 8;
  if (typeof multiple !== 'number' || !Number.isInteger(multiple) || multiple < 1) {
    throw new ConfigError(file, 'pad_vocab_size_multiple', `expected a positive integer, got ${show(multiple)}`);
  }
  if (typeof vocab !== 'number' || !Number.isInteger(vocab) || vocab < 1) {
    throw new ConfigError(file, 'vocab_size', `expected a positive integer, got ${show(vocab)}`);
  }
  const padded = Math.ceil(vocab / multiple) * multiple;
  const raw: RawFields = {
    dModel: 2560,
    nLayer: 64,
    ...top.raw,
    ...inner.raw,
    vocabSize: padded,
    realVocabSize: vocab,
    format: 'mamba_ssm',
  };
  return hybridPart(obj, validateMamba2(raw, file, names), failIn(file)); // attn_layer_idx / d_intermediate, if any
}

export const mambaSsm: Family = {
  name: 'mamba_ssm',
  format: 'mamba_ssm',
  readConfig,
  names: {
    top: () => ({ embedding: 'backbone.embedding.weight', normF: 'backbone.norm_f.weight' }),
    norm: (_c, i) => `backbone.layers.${i}.norm.weight`,
    mamba: (_c, i) => `backbone.layers.${i}.mixer`,
    attention: (c, i) => {
      const a = attentionOf(c);
      const m = `backbone.layers.${i}.mixer`;
      return {
        qkv: `${m}.in_proj.weight`,
        ...(a.qkvBias ? { qkvBias: `${m}.in_proj.bias` } : {}),
        ...(a.convKernel > 0 ? { attnConv: `${m}.conv1d.weight`, attnConvBias: `${m}.conv1d.bias` } : {}), // nn.Conv1d: bias on
        attnOut: `${m}.out_proj.weight`,
        ...(a.outBias ? { attnOutBias: `${m}.out_proj.bias` } : {}),
      };
    },
    mlp: (_c, i) => ({ fc1: `backbone.layers.${i}.mlp.fc1.weight`, down: `backbone.layers.${i}.mlp.fc2.weight` }),
    afterNorm: (_c, i) => `backbone.layers.${i}.norm2.weight`,
  },
};
