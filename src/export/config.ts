/**
 * Reads Mamba-2 `config.json` files (HF `Mamba2ForCausalLM` and original state-spaces/mamba) into
 * the frozen, validated `Mamba2Config`. Key mapping and defaults: docs/model.md §0, §4.3, §6.10/11/14/16.
 * Every error names the file and the key, with expected vs got.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointFormat, Mamba2Config } from '../package/config.js';
import { bambaHybrid, type Fail, mambaSsmHybrid } from './hybrid-config.js';

/** A config that cannot be used: `file` names the source, `key` the offending key. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly detail: string,
  ) {
    super(`${file}: ${key ? `"${key}": ` : ''}${detail}`);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const FLOAT_WORDS: ReadonlyMap<string, number> = new Map([
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['NaN', NaN],
  ['inf', Infinity],
  ['-inf', -Infinity],
  ['nan', NaN],
]);

/**
 * JSON.parse that also accepts bare `Infinity`, `-Infinity` and `NaN` outside strings (Python's
 * json writes them: `"time_step_limit": [0.0, Infinity]`) and HF 5.x's `{"__float__": "Infinity"}`.
 * A pre-pass rewrites the bare words (never inside strings) into `__float__` objects; the reviver
 * turns every `__float__` object into a number.
 */
export function parseConfigText(text: string, file: string): unknown {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (ch !== 'I' && ch !== 'N' && ch !== '-') continue;
    const word = ['-Infinity', 'Infinity', 'NaN'].find((w) => text.startsWith(w, i));
    if (word === undefined) continue;
    out += `${text.slice(last, i)}{"__float__":"${word}"}`;
    i += word.length - 1;
    last = i + 1;
  }
  out += text.slice(last);
  try {
    return JSON.parse(out, (key, value: unknown) => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      const keys = Object.keys(value);
      if (keys.length !== 1 || keys[0] !== '__float__') return value;
      const word = (value as { __float__: unknown }).__float__;
      const num = typeof word === 'string' ? FLOAT_WORDS.get(word) : undefined;
      if (num === undefined) {
        const want = '{"__float__": "Infinity" | "-Infinity" | "NaN"}';
        throw new ConfigError(file, key, `expected ${want}, got ${JSON.stringify(value)}`);
      }
      return num;
    }) as unknown;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, '', `invalid JSON: ${(e as Error).message}`);
  }
}

/** Everything `makeConfig` accepts; the three sizes are required, the rest default to mamba_ssm's Mamba2 defaults. */
export interface ConfigInput {
  dModel: number;
  nLayer: number;
  /** Embedding rows (already padded). */
  vocabSize: number;
  format?: CheckpointFormat; // default 'mamba_ssm'
  realVocabSize?: number; // default vocabSize
  dState?: number; // 128
  dConv?: number; // 4
  expand?: number; // 2
  headDim?: number; // 64
  /** Checked against dSsm / headDim when given. */
  nHeads?: number;
  nGroups?: number; // 1
  chunkSize?: number; // 256
  dSsm?: number; // dInner
  dtLimit?: readonly [number, number]; // [0, Infinity]
  dHasHdim?: boolean; // false
  rmsNorm?: boolean; // true
  normBeforeGate?: boolean; // false
  bias?: boolean; // false
  convBias?: boolean; // true
  tieEmbeddings?: boolean; // true for mamba_ssm, false for hf
  normEps?: number; // 1e-5
  residualInFp32?: boolean; // true
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
}

type Field = keyof ConfigInput;
/** Raw values as read from a file (not yet checked), and the file's own name for each field. */
type RawFields = { [K in Field]?: unknown };
type KeyNames = { [K in Field]?: string };

/** Largest dim accepted in a config (no published model comes near). */
const MAX_DIM = 2 ** 24;
/** Largest weight tensor, in elements (one Float32Array; 8 GiB in fp32). */
const MAX_TENSOR_ELEMENTS = 2 ** 31;

const DEFAULTS = {
  dState: 128,
  dConv: 4,
  expand: 2,
  headDim: 64,
  nGroups: 1,
  chunkSize: 256,
  dHasHdim: false,
  rmsNorm: true,
  normBeforeGate: false,
  bias: false,
  convBias: true,
  normEps: 1e-5,
  residualInFp32: true,
} as const;

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : v === undefined ? 'nothing (missing)' : JSON.stringify(v));

/** Validates raw fields, derives the sizes, freezes. `names` maps fields to the file's key names. */
function finish(raw: RawFields, file: string, names: KeyNames): Mamba2Config {
  const name = (f: Field): string => names[f] ?? f;
  const fail = (f: Field, detail: string): never => {
    throw new ConfigError(file, name(f), detail);
  };
  const posInt = (f: Field): number => {
    const v = raw[f] ?? (DEFAULTS as Partial<Record<Field, unknown>>)[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(f, `expected a positive integer, got ${show(v)}`);
    if ((v as number) > MAX_DIM) fail(f, `expected at most ${MAX_DIM}, got ${show(v)}`);
    return v as number;
  };
  const bool = (f: Field, dflt: boolean): boolean => {
    const v = raw[f] ?? dflt;
    if (typeof v !== 'boolean') fail(f, `expected true or false, got ${show(v)}`);
    return v as boolean;
  };
  const tokenId = (f: Field, vocab: number): number | undefined => {
    let v = raw[f];
    if (Array.isArray(v)) v = v[0]; // HF allows a list of eos ids; the first is the canonical one
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocab) {
      fail(f, `expected a token id in [0, ${vocab}), got ${show(v)}`);
    }
    return v as number;
  };

  const format = (raw.format ?? 'mamba_ssm') as CheckpointFormat;
  if (format !== 'hf' && format !== 'mamba_ssm') fail('format', `expected "hf" or "mamba_ssm", got ${show(format)}`);
  const dModel = posInt('dModel');
  const nLayer = posInt('nLayer');
  const vocabSize = posInt('vocabSize');
  const realVocabSize = raw.realVocabSize === undefined ? vocabSize : posInt('realVocabSize');
  if (realVocabSize > vocabSize) {
    fail('realVocabSize', `expected at most the ${vocabSize} embedding rows, got ${realVocabSize}`);
  }
  const dState = posInt('dState');
  const dConv = posInt('dConv');
  const headDim = posInt('headDim');
  const nGroups = posInt('nGroups');
  const chunkSize = posInt('chunkSize');

  const expand = raw.expand ?? DEFAULTS.expand;
  if (typeof expand !== 'number' || !(expand > 0) || !Number.isFinite(expand)) {
    fail('expand', `expected a positive number, got ${show(expand)}`);
  }
  const dInner = (expand as number) * dModel;
  if (!Number.isInteger(dInner)) {
    const got = `${show(expand)} × ${dModel} = ${dInner}`;
    fail('expand', `expected expand × ${name('dModel')} to be an integer, got ${got}`);
  }
  const dSsm = raw.dSsm === undefined || raw.dSsm === null ? dInner : posInt('dSsm');
  if (dSsm > dInner) fail('dSsm', `expected at most d_inner = ${dInner}, got ${dSsm}`);
  if (dSsm % headDim !== 0) {
    fail('headDim', `expected a divisor of d_ssm = ${dSsm} (heads × head_dim == d_ssm), got ${headDim}`);
  }
  const nHeads = dSsm / headDim;
  if (raw.nHeads !== undefined && raw.nHeads !== nHeads) {
    const rule =
      dSsm === dInner
        ? `${name('expand')}·${name('dModel')}/${name('headDim')} = ${show(expand)}·${dModel}/${headDim}`
        : `${name('dSsm')}/${name('headDim')} = ${dSsm}/${headDim}`;
    fail('nHeads', `expected ${rule} = ${nHeads}, got ${show(raw.nHeads)}`);
  }
  if (nHeads % nGroups !== 0) {
    fail('nGroups', `expected a divisor of the ${nHeads} heads (heads % groups == 0), got ${nGroups}`);
  }

  const lim = raw.dtLimit ?? [0, Infinity];
  if (!Array.isArray(lim) || lim.length !== 2 || lim.some((x) => typeof x !== 'number' || Number.isNaN(x))) {
    fail('dtLimit', `expected [lo, hi] (two numbers, hi may be Infinity), got ${show(lim)}`);
  }
  const [lo, hi] = lim as [number, number];
  if (!(lo >= 0) || !Number.isFinite(lo)) fail('dtLimit', `expected a finite lower bound ≥ 0, got ${lo}`);
  if (!(lo <= hi)) fail('dtLimit', `expected lo ≤ hi, got [${lo}, ${hi}]`);

  const normEps = raw.normEps ?? DEFAULTS.normEps;
  if (typeof normEps !== 'number' || !(normEps > 0) || !Number.isFinite(normEps)) {
    fail('normEps', `expected a positive finite number, got ${show(normEps)}`);
  }

  const convDim = dSsm + 2 * nGroups * dState;
  if (dConv < 2) fail('dConv', `expected a conv width ≥ 2 (the state holds K−1 columns), got ${dConv}`);
  // every weight must fit one typed array: refuse sizes no checkpoint can have before anything is allocated
  const biggest = Math.max(vocabSize * dModel, (2 * dInner + 2 * nGroups * dState + nHeads) * dModel, dModel * dInner);
  if (biggest > MAX_TENSOR_ELEMENTS)
    fail('dModel', `expected sizes whose largest weight has ≤ ${MAX_TENSOR_ELEMENTS} elements, got ${biggest}`);
  const config: Mamba2Config = {
    format,
    dModel,
    nLayer,
    vocabSize,
    realVocabSize,
    dState,
    dConv,
    expand: expand as number,
    headDim,
    nHeads,
    nGroups,
    chunkSize,
    dInner,
    dSsm,
    dMlp: dInner - dSsm,
    convDim,
    dInProj: 2 * dInner + 2 * nGroups * dState + nHeads,
    dtLimit: Object.freeze([lo, hi] as [number, number]),
    dHasHdim: bool('dHasHdim', DEFAULTS.dHasHdim),
    rmsNorm: bool('rmsNorm', DEFAULTS.rmsNorm),
    normBeforeGate: bool('normBeforeGate', DEFAULTS.normBeforeGate),
    bias: bool('bias', DEFAULTS.bias),
    convBias: bool('convBias', DEFAULTS.convBias),
    tieEmbeddings: bool('tieEmbeddings', format === 'mamba_ssm'),
    normEps: normEps as number,
    residualInFp32: bool('residualInFp32', DEFAULTS.residualInFp32),
  };
  const ids = {
    bosTokenId: tokenId('bosTokenId', vocabSize),
    eosTokenId: tokenId('eosTokenId', vocabSize),
    padTokenId: tokenId('padTokenId', vocabSize),
  };
  for (const [k, v] of Object.entries(ids)) if (v !== undefined) Object.assign(config, { [k]: v });
  return Object.freeze(config);
}

/** A validated config from sizes in code (presets, tests); defaults as in `ConfigInput`. */
export function makeConfig(input: ConfigInput, source = 'makeConfig'): Mamba2Config {
  return finish({ ...input }, source, {});
}

function asObject(v: unknown, file: string, key: string): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError(file, key, `expected a JSON object, got ${show(v)}`);
  }
  return v as JsonObject;
}

/** Fields whose key is absent stay undefined (so `finish` applies the default). */
function pick(obj: JsonObject, map: KeyNames, prefix = ''): { raw: RawFields; names: KeyNames } {
  const raw: RawFields = {};
  const names: KeyNames = {};
  for (const [field, key] of Object.entries(map) as [Field, string][]) {
    names[field] = prefix + key;
    const v = obj[key];
    if (v !== undefined && v !== null) raw[field] = v;
  }
  return { raw, names };
}

const failIn =
  (file: string): Fail =>
  (key, detail) => {
    throw new ConfigError(file, key, detail);
  };

const HYBRID_MODEL_TYPES = new Set(['falcon_h1', 'zamba2', 'nemotron_h', 'granitemoehybrid', 'jamba']);

const HF_KEYS: KeyNames = {
  dModel: 'hidden_size',
  nLayer: 'num_hidden_layers',
  vocabSize: 'vocab_size',
  dState: 'state_size',
  dConv: 'conv_kernel',
  expand: 'expand',
  headDim: 'head_dim',
  nHeads: 'num_heads',
  nGroups: 'n_groups',
  chunkSize: 'chunk_size',
  dtLimit: 'time_step_limit',
  rmsNorm: 'rms_norm',
  bias: 'use_bias',
  convBias: 'use_conv_bias',
  tieEmbeddings: 'tie_word_embeddings',
  normEps: 'layer_norm_epsilon',
  residualInFp32: 'residual_in_fp32',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
  padTokenId: 'pad_token_id',
};

/** transformers' `Mamba2Config.__init__` defaults (configuration_mamba2.py), applied to absent keys. */
const HF_DEFAULTS: RawFields = {
  dModel: 4096,
  nLayer: 64,
  vocabSize: 32768,
  dState: 128,
  dConv: 4,
  expand: 2,
  headDim: 64,
  nHeads: 128,
  nGroups: 8,
  chunkSize: 256,
  dtLimit: [0, Infinity],
  rmsNorm: true,
  bias: false,
  convBias: true,
  tieEmbeddings: false,
  normEps: 1e-5,
  residualInFp32: true,
  bosTokenId: 0,
  eosTokenId: 2,
  padTokenId: 1,
};

function checkActivation(obj: JsonObject, key: string, file: string, prefix = ''): void {
  const act = obj[key];
  if (act !== undefined && act !== null && act !== 'silu' && act !== 'swish') {
    throw new ConfigError(file, prefix + key, `expected "silu", got ${show(act)}: other activations are not supported`);
  }
}

/** HF `Mamba2ForCausalLM` config.json (`model_type: "mamba2"`). `num_heads` is stored, not derived (model.md §6.14). */
export function hfConfigToMamba2(rawJson: unknown, file: string): Mamba2Config {
  const obj = asObject(rawJson, file, '');
  const type = obj.model_type;
  if (type === 'bamba') return bambaConfig(obj, file);
  if (type !== 'mamba2') {
    const hint =
      typeof type === 'string' && HYBRID_MODEL_TYPES.has(type)
        ? ': hybrid models are not supported yet'
        : type === undefined && ('ssm_cfg' in obj || 'd_model' in obj)
          ? ': this looks like a mamba_ssm config.json; use format "mamba_ssm"'
          : '';
    throw new ConfigError(file, 'model_type', `expected "mamba2" or "bamba", got ${show(type)}${hint}`);
  }
  checkActivation(obj, 'hidden_act', file);
  const { raw, names } = pick(obj, HF_KEYS);
  if (raw.nHeads === undefined) names.nHeads = 'num_heads (absent, so the HF default 128)';
  // norm_before_gate is ignored by HF (hard-coded False), docs/model.md §6.3; HF has no D_has_hdim / d_ssm.
  return finish({ ...HF_DEFAULTS, ...raw, format: 'hf' }, file, names);
}

const BAMBA_KEYS: KeyNames = {
  dModel: 'hidden_size',
  nLayer: 'num_hidden_layers',
  vocabSize: 'vocab_size',
  dState: 'mamba_d_state',
  dConv: 'mamba_d_conv',
  expand: 'mamba_expand',
  headDim: 'mamba_d_head',
  nHeads: 'mamba_n_heads',
  nGroups: 'mamba_n_groups',
  chunkSize: 'mamba_chunk_size',
  dtLimit: 'time_step_limit',
  bias: 'mamba_proj_bias',
  convBias: 'mamba_conv_bias',
  tieEmbeddings: 'tie_word_embeddings',
  normEps: 'rms_norm_eps',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
  padTokenId: 'pad_token_id',
};

/** transformers' `BambaConfig.__init__` defaults (Bamba-9B), applied to absent keys. */
const BAMBA_DEFAULTS: RawFields = {
  dModel: 4096,
  nLayer: 32,
  vocabSize: 128000,
  dState: 256,
  dConv: 4,
  expand: 2,
  nHeads: 128,
  nGroups: 1,
  chunkSize: 256,
  dtLimit: [0, Infinity],
  bias: false,
  convBias: true,
  tieEmbeddings: false,
  normEps: 1e-5,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
};

/** HF `BambaForCausalLM` config.json: the Mamba-2 layers' fields (`mamba_*`), then the hybrid part (hybrid-config.ts). */
function bambaConfig(obj: JsonObject, file: string): Mamba2Config {
  checkActivation(obj, 'hidden_act', file);
  const { raw, names } = pick(obj, BAMBA_KEYS);
  const r: RawFields = { ...BAMBA_DEFAULTS, ...raw, format: 'hf' };
  if (r.headDim === undefined || r.headDim === 'auto') {
    const [e, d, h] = [r.expand, r.dModel, r.nHeads];
    if (typeof e === 'number' && typeof d === 'number' && typeof h === 'number' && !Number.isInteger((e * d) / h)) {
      throw new ConfigError(
        file,
        'mamba_n_heads',
        `expected a divisor of mamba_expand·hidden_size = ${e * d} (mamba_d_head "auto"), got ${h}`,
      );
    }
    r.headDim = typeof e === 'number' && typeof d === 'number' && typeof h === 'number' ? (e * d) / h : undefined;
  }
  return bambaHybrid(obj, finish(r, file, names), failIn(file));
}

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

/**
 * Original state-spaces/mamba config.json (`MambaConfig`): vocab padded up to pad_vocab_size_multiple
 * (default 8), `ssm_cfg` with Mamba2's constructor defaults, tie_embeddings default true.
 */
export function mambaSsmConfigToMamba2(rawJson: unknown, file: string): Mamba2Config {
  const obj = asObject(rawJson, file, '');
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
  return mambaSsmHybrid(obj, finish(raw, file, names), failIn(file)); // attn_layer_idx / d_intermediate, if any
}

/** Which parser a parsed config.json needs: HF configs carry `model_type`, mamba_ssm ones do not. */
export function detectConfigFormat(raw: unknown): CheckpointFormat {
  return raw !== null && typeof raw === 'object' && 'model_type' in raw ? 'hf' : 'mamba_ssm';
}

/** Parses an already-decoded config object of the given format. */
export function configFromJson(raw: unknown, format: CheckpointFormat, file: string): Mamba2Config {
  return format === 'hf' ? hfConfigToMamba2(raw, file) : mambaSsmConfigToMamba2(raw, file);
}

/** Reads `dir/config.json` in the given checkpoint format. */
export async function loadConfig(dir: string, format: CheckpointFormat): Promise<Mamba2Config> {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the config: ${(e as Error).message}`);
  }
  return configFromJson(parseConfigText(text, file), format, file);
}
