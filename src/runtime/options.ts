/**
 * Generation options and their validation at the API boundary: TypeError for the wrong kind,
 * RangeError for a bad value; every message names the argument and shows expected vs got.
 */
import { describe } from './backend.js';
import type { SamplingParams } from './sampling.js';
import type { Mamba2State } from './state.js';

export interface GenerateOptions {
  /** New tokens at most (default 64). 0 only runs the prefill. */
  maxNewTokens?: number;
  /** Stop ids (EOS included) cannot be chosen before this many new tokens (default 0). */
  minNewTokens?: number;
  /** 0 = greedy (the default); > 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off, the default). */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1] (1 = off, the default). */
  topP?: number;
  /** > 1 discourages repeats (1 = off, the default). */
  repetitionPenalty?: number;
  /** Seed of the sampler's RNG: the same seed gives the same tokens. Random when absent (reported in the result). */
  seed?: number;
  /** Extra token ids that end generation (the model's EOS always does). */
  stopTokenIds?: readonly number[];
  /** Strings that end generation; the text is cut just before the first one. Needs a tokenizer. */
  stopStrings?: readonly string[];
  /** Prefill long prompts in windows of this many tokens, each continuing the state (default: one call). */
  prefillWindow?: number;
  /** Cancels generation: the pending call rejects (or the stream throws) with the signal's reason. */
  signal?: AbortSignal;
  /** Continue from this state (e.g. a saved prompt prefix) instead of a fresh one. Not disposed. */
  state?: Mamba2State;
  /** Let the tokenizer add its special tokens (BOS…) when encoding a text prompt (default true). */
  addSpecialTokens?: boolean;
}

/** Options after validation, with defaults filled in. */
export interface ResolvedOptions {
  maxNewTokens: number;
  minNewTokens: number;
  sampling: Omit<SamplingParams, 'realVocabSize' | 'suppress'>;
  seed: number | undefined;
  stopTokenIds: number[];
  stopStrings: string[];
  prefillWindow: number;
  signal: AbortSignal | undefined;
  state: Mamba2State | undefined;
  addSpecialTokens: boolean;
}

const KNOWN = new Set([
  'maxNewTokens',
  'minNewTokens',
  'temperature',
  'topK',
  'topP',
  'repetitionPenalty',
  'seed',
  'stopTokenIds',
  'stopStrings',
  'prefillWindow',
  'signal',
  'state',
  'addSpecialTokens',
]);

function num(o: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, expected: string): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`opts.${key}: expected a number (${expected}), got ${describe(v)}`);
  if (!ok(v)) throw new RangeError(`opts.${key}: expected ${expected}, got ${v}`);
  return v;
}

const isInt = (v: number): boolean => Number.isSafeInteger(v);

/** Validate user options; `vocab` bounds stopTokenIds. */
export function resolveOptions(opts: unknown, vocab: number): ResolvedOptions {
  if (opts === undefined) opts = {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new TypeError(`opts: expected an options object, got ${describe(opts)}`);
  const o = opts as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw new RangeError(`opts.${k}: unknown option, expected one of ${[...KNOWN].join(', ')}`);
  }
  const maxNewTokens = num(o, 'maxNewTokens', 64, (v) => isInt(v) && v >= 0, 'an integer ≥ 0');
  const minNewTokens = num(o, 'minNewTokens', 0, (v) => isInt(v) && v >= 0, 'an integer ≥ 0');
  const temperature = num(o, 'temperature', 0, (v) => Number.isFinite(v) && v >= 0, 'a finite number ≥ 0 (0 = greedy)');
  const topK = num(o, 'topK', 0, (v) => isInt(v) && v >= 0, 'an integer ≥ 0 (0 = off)');
  const topP = num(o, 'topP', 1, (v) => v > 0 && v <= 1, 'a number in (0, 1] (1 = off)');
  const repetitionPenalty = num(o, 'repetitionPenalty', 1, (v) => Number.isFinite(v) && v > 0, 'a finite number > 0 (1 = off)');
  const prefillWindow = num(o, 'prefillWindow', Infinity, (v) => (isInt(v) && v >= 1) || v === Infinity, 'an integer ≥ 1');
  let seed: number | undefined;
  if (o.seed !== undefined) seed = num(o, 'seed', 0, (v) => isInt(v) && v >= 0, 'an integer ≥ 0');

  const stopTokenIds: number[] = [];
  if (o.stopTokenIds !== undefined) {
    if (!Array.isArray(o.stopTokenIds))
      throw new TypeError(`opts.stopTokenIds: expected an array of token ids, got ${describe(o.stopTokenIds)}`);
    o.stopTokenIds.forEach((id: unknown, i) => {
      if (typeof id !== 'number') throw new TypeError(`opts.stopTokenIds[${i}]: expected a token id (number), got ${describe(id)}`);
      if (!isInt(id) || id < 0 || id >= vocab)
        throw new RangeError(`opts.stopTokenIds[${i}]: expected an integer in [0, ${vocab}), got ${id}`);
      stopTokenIds.push(id);
    });
  }
  const stopStrings: string[] = [];
  if (o.stopStrings !== undefined) {
    if (!Array.isArray(o.stopStrings))
      throw new TypeError(`opts.stopStrings: expected an array of strings, got ${describe(o.stopStrings)}`);
    o.stopStrings.forEach((s: unknown, i) => {
      if (typeof s !== 'string') throw new TypeError(`opts.stopStrings[${i}]: expected a string, got ${describe(s)}`);
      if (s === '') throw new RangeError(`opts.stopStrings[${i}]: expected a non-empty string, got ""`);
      stopStrings.push(s);
    });
  }
  const signal = o.signal;
  if (signal !== undefined && !(typeof signal === 'object' && signal !== null && 'aborted' in signal && 'addEventListener' in signal)) {
    throw new TypeError(`opts.signal: expected an AbortSignal, got ${describe(signal)}`);
  }
  const addSpecialTokens = o.addSpecialTokens ?? true;
  if (typeof addSpecialTokens !== 'boolean')
    throw new TypeError(`opts.addSpecialTokens: expected a boolean, got ${describe(addSpecialTokens)}`);
  return {
    maxNewTokens,
    minNewTokens,
    sampling: { temperature, topK, topP, repetitionPenalty },
    seed,
    stopTokenIds,
    stopStrings,
    prefillWindow,
    signal: signal as AbortSignal | undefined,
    state: o.state as Mamba2State | undefined,
    addSpecialTokens,
  };
}

const outOfVocab = (what: string, i: number, vocab: number, id: number | bigint): RangeError =>
  new RangeError(`${what}[${i}]: token id out of vocab, expected an integer in [0, ${vocab}), got ${id}`);

/**
 * Token ids from the user: `number[]` for one sequence, or one row of int64 ids. Every id must be
 * an integer in [0, vocab). `what` names the argument in errors. The one vocabulary check of ids.
 */
export function checkIds(ids: BigInt64Array, vocab: number, what: string): BigInt64Array;
export function checkIds(ids: unknown, vocab: number, what: string): number[];
export function checkIds(ids: unknown, vocab: number, what: string): number[] | BigInt64Array {
  if (ids instanceof BigInt64Array) {
    const top = BigInt(vocab);
    if (ids.length === 0) throw new RangeError(`${what}: expected at least one token id, got an empty array`);
    for (let i = 0; i < ids.length; i++) if (ids[i]! < 0n || ids[i]! >= top) throw outOfVocab(what, i, vocab, ids[i]!);
    return ids;
  }
  if (!Array.isArray(ids)) throw new TypeError(`${what}: expected an array of token ids, got ${describe(ids)}`);
  if (ids.length === 0) throw new RangeError(`${what}: expected at least one token id, got an empty array`);
  for (let i = 0; i < ids.length; i++) {
    const id: unknown = ids[i];
    if (typeof id !== 'number') throw new TypeError(`${what}[${i}]: expected a token id (number), got ${describe(id)}`);
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw outOfVocab(what, i, vocab, id);
  }
  return ids as number[];
}
