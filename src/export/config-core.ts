/**
 * The core of every config reader (families/*.ts): the ConfigError, the lenient JSON text parser,
 * and the validation of the Mamba-2 part of a config (`validateMamba2`: sizes, derived dims, dt
 * limits, token ids), which every family maps its own keys onto. Defaults: docs/model.md §0, §4.3.
 * Every error names the file and the key, with expected vs got.
 */
import type { CheckpointFormat, Mamba2Config } from '../package/config.js';
import type { Fail, JsonObject } from './families/types.js';

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
  /** The z width of in_proj when it is not expand·dModel (Nemotron-H: mamba_num_heads·mamba_head_dim); expand is then dInner/dModel. */
  dInner?: number;
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

export type Field = keyof ConfigInput;
/** Raw values as read from a file (not yet checked), and the file's own name for each field. */
export type RawFields = { [K in Field]?: unknown };
export type KeyNames = { [K in Field]?: string };

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

export const show = (v: unknown): string => (typeof v === 'number' ? String(v) : v === undefined ? 'nothing (missing)' : JSON.stringify(v));

/** Validates raw fields, derives the sizes, freezes. `names` maps fields to the file's key names. */
export function validateMamba2(raw: RawFields, file: string, names: KeyNames): Mamba2Config {
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
  const dInner = raw.dInner === undefined ? (expand as number) * dModel : posInt('dInner');
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
      dSsm === dInner && raw.dInner === undefined
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
    expand: raw.dInner === undefined ? (expand as number) : dInner / dModel,
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
  return validateMamba2({ ...input }, source, {});
}

export function asObject(v: unknown, file: string, key: string): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError(file, key, `expected a JSON object, got ${show(v)}`);
  }
  return v as JsonObject;
}

/** Fields whose key is absent stay undefined (so `finish` applies the default). */
export function pick(obj: JsonObject, map: KeyNames, prefix = ''): { raw: RawFields; names: KeyNames } {
  const raw: RawFields = {};
  const names: KeyNames = {};
  for (const [field, key] of Object.entries(map) as [Field, string][]) {
    names[field] = prefix + key;
    const v = obj[key];
    if (v !== undefined && v !== null) raw[field] = v;
  }
  return { raw, names };
}

export const failIn =
  (file: string): Fail =>
  (key, detail) => {
    throw new ConfigError(file, key, detail);
  };

export function checkActivation(obj: JsonObject, key: string, file: string, prefix = ''): void {
  const act = obj[key];
  if (act !== undefined && act !== null && act !== 'silu' && act !== 'swish') {
    throw new ConfigError(file, prefix + key, `expected "silu", got ${show(act)}: other activations are not supported`);
  }
}
