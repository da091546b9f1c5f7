/**
 * POST /v1/completions body → a checked CompletionRequest. Every mistake is a 400 whose `param`
 * names the field; fields OpenAI defines but this server does not implement are refused (400) when
 * set to anything but their neutral value, rather than silently ignored.
 */
import { clipInput, invalid, ApiError } from './errors.js';

export interface SamplingRequest {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  repetitionPenalty: number;
  /** Seed of this request's RNG (random when absent). */
  seed: number | undefined;
}

export interface CompletionRequest {
  /** The prompt as text (undefined when token ids were sent). */
  promptText: string | undefined;
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingRequest;
  stop: string[];
  stream: boolean;
  /** stream_options.include_usage: a last chunk with `usage`. */
  includeUsage: boolean;
}

export interface ValidationContext {
  modelName: string;
  /** Ids the model really has: a token id must be below this. */
  realVocabSize: number;
  maxPromptTokens: number;
  maxTokens: number;
  defaultMaxTokens: number;
  /** Text → ids, or undefined when the model has no tokenizer. */
  encode: ((text: string) => number[]) | undefined;
}

const KNOWN = new Set([
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop',
  'stream',
  'stream_options',
  'n',
  'best_of',
  'echo',
  'logprobs',
  'suffix',
  'logit_bias',
  'presence_penalty',
  'frequency_penalty',
  'user',
  'repetition_penalty',
]);

const MAX_STOP = 16;
const MAX_STOP_LENGTH = 256;

/**
 * A request body (JSON text) → its value. Invalid JSON is a 400 `invalid_json`; a `__proto__` key,
 * or a `constructor` key holding a `prototype` key, anywhere in the body is a 400 `forbidden_key`
 * whose `param` is the key's path (fastify's own parser refuses these too, but as "not valid JSON").
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw invalid(null, 'request body: empty, expected a JSON object', 'invalid_json');
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw invalid(null, `request body: not valid JSON (${e instanceof Error ? e.message : String(e)})`, 'invalid_json');
  }
  // A key can only decode to one of these when the text spells it out or holds a \u escape.
  if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) return value;
  // Iterative, with parent links (the path is spelled out only for an error): a deeply nested
  // body neither overflows the stack nor builds a path string per node.
  interface Node {
    v: unknown;
    key: string | number;
    parent: Node | undefined;
  }
  const pathOf = (n: Node | undefined, last?: string): string => {
    const parts: (string | number)[] = last === undefined ? [] : [last];
    for (let p = n; p?.parent !== undefined; p = p.parent) parts.push(p.key);
    return parts.reverse().reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? k : `${acc}.${k}`), '');
  };
  const todo: Node[] = [{ v: value, key: '', parent: undefined }];
  const visit = (x: unknown, key: string | number, parent: Node): void => {
    if (typeof x === 'object' && x !== null) todo.push({ v: x, key, parent }); // leaves need no visit
  };
  for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
    const v = n.v;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) visit(v[i], i, n);
      continue;
    }
    const where = (): string => (n.parent === undefined ? '' : `in ${clipInput(pathOf(n))} `);
    if (Object.hasOwn(v, '__proto__')) {
      throw invalid(
        clipInput(pathOf(n, '__proto__')),
        `body: the key "__proto__" ${where()}is not allowed (prototype pollution guard)`,
        'forbidden_key',
      );
    }
    const ctor = (v as Record<string, unknown>)['constructor'];
    if (Object.hasOwn(v, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) {
      throw invalid(
        clipInput(pathOf(n, 'constructor.prototype')),
        `body: the key "constructor" ${where()}holding a "prototype" key is not allowed (prototype pollution guard)`,
        'forbidden_key',
      );
    }
    for (const k in v) if (Object.hasOwn(v, k)) visit((v as Record<string, unknown>)[k], k, n);
  }
  return value;
}

/** What a JSON value is, for messages. */
function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of length ${v.length}` : `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** An optional number field: undefined/null → `dflt`; otherwise must pass `ok`. */
function number(o: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, expected: string): number {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(key, `${key}: expected ${expected}, got ${kind(v)}`);
  if (!ok(v)) throw invalid(key, `${key}: expected ${expected}, got ${v}`);
  return v;
}

/** A field that must hold its neutral value (a feature this server does not offer). */
function neutral(o: Record<string, unknown>, key: string, isNeutral: (v: unknown) => boolean, what: string): void {
  const v = o[key];
  if (v !== undefined && v !== null && !isNeutral(v)) throw invalid(key, `${key}: not supported by this server (${what}), got ${kind(v)}`);
}

function checkIds(ids: readonly unknown[], ctx: ValidationContext, param: string): number[] {
  if (ids.length === 0) throw invalid(param, `${param}: expected at least one token id, got an empty array`);
  ids.forEach((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= ctx.realVocabSize) {
      throw invalid(param, `${param}[${i}]: expected a token id, an integer in [0, ${ctx.realVocabSize}), got ${kind(id)}`);
    }
  });
  return ids as number[];
}

/** The prompt: a string, token ids, or a one-element array of either (batches of prompts are refused). */
function prompt(v: unknown, ctx: ValidationContext): { text: string | undefined; ids: number[] } {
  if (v === undefined || v === null) throw invalid('prompt', 'prompt: required, expected a string or an array of token ids');
  let p = v;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  else if (Array.isArray(p) && p.length > 1 && p.every((x) => typeof x === 'string' || Array.isArray(x))) {
    throw invalid(
      'prompt',
      `prompt: expected one prompt per request, got ${p.length} (send them as separate requests: they are batched anyway)`,
    );
  }
  let ids: number[];
  let text: string | undefined;
  if (typeof p === 'string') {
    if (p === '') throw invalid('prompt', 'prompt: expected a non-empty string, got ""');
    if (!ctx.encode) throw invalid('prompt', 'prompt: this model has no tokenizer, so it accepts token ids only (an array of integers)');
    // A cheap upper bound first: byte-level BPE never gives more tokens than UTF-16 units × 2.
    if (p.length > ctx.maxPromptTokens * 16) throw tooLong(p.length, ctx, 'characters');
    ids = ctx.encode(p);
    text = p;
    if (ids.length === 0) throw invalid('prompt', 'prompt: the text encodes to no tokens');
  } else if (Array.isArray(p)) {
    if (p.length > ctx.maxPromptTokens) throw tooLong(p.length, ctx, 'tokens');
    ids = checkIds(p, ctx, 'prompt');
  } else {
    throw invalid('prompt', `prompt: expected a string or an array of token ids, got ${kind(p)}`);
  }
  if (ids.length > ctx.maxPromptTokens) throw tooLong(ids.length, ctx, 'tokens');
  return { text, ids: ids.slice() };
}

const tooLong = (n: number, ctx: ValidationContext, unit: string): ApiError =>
  invalid('prompt', `prompt: too long, expected at most ${ctx.maxPromptTokens} tokens, got ${n} ${unit}`, 'prompt_too_long');

function stopStrings(v: unknown, hasTokenizer: boolean): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw invalid('stop', `stop: expected a string or an array of strings, got ${kind(v)}`);
  if (list.length > MAX_STOP) throw invalid('stop', `stop: expected at most ${MAX_STOP} strings, got ${list.length}`);
  list.forEach((s: unknown, i) => {
    if (typeof s !== 'string' || s === '' || s.length > MAX_STOP_LENGTH) {
      throw invalid('stop', `stop[${i}]: expected a non-empty string of at most ${MAX_STOP_LENGTH} characters, got ${kind(s)}`);
    }
  });
  if (list.length > 0 && !hasTokenizer)
    throw invalid('stop', 'stop: this model has no tokenizer, so there is no text to match stop strings in');
  return list as string[];
}

/** Check a /v1/completions body (already parsed JSON). */
export function parseCompletionRequest(body: unknown, ctx: ValidationContext): CompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(null, `request body: expected a JSON object, got ${kind(body)}`, 'invalid_body');
  }
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k))
      throw invalid(clipInput(k), `${clipInput(k)}: unknown field, expected some of ${[...KNOWN].join(', ')}`, 'unknown_field');
  }
  if (o.model !== undefined && o.model !== null) {
    if (typeof o.model !== 'string') throw invalid('model', `model: expected a string, got ${kind(o.model)}`);
    if (o.model !== ctx.modelName) {
      throw new ApiError(
        404,
        `model: the model '${clipInput(o.model)}' does not exist, this server serves '${ctx.modelName}'`,
        'not_found_error',
        'model',
        'model_not_found',
      );
    }
  }
  const { text, ids } = prompt(o.prompt, ctx);
  const int = (v: number): boolean => Number.isSafeInteger(v);
  const maxTokens = number(
    o,
    'max_tokens',
    ctx.defaultMaxTokens,
    (v) => int(v) && v >= 1 && v <= ctx.maxTokens,
    `an integer in [1, ${ctx.maxTokens}]`,
  );
  const temperature = number(o, 'temperature', 1, (v) => v >= 0 && v <= 2, 'a number in [0, 2] (0 = greedy)');
  const topP = number(o, 'top_p', 1, (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const topK = number(o, 'top_k', 0, (v) => int(v) && v >= -1, 'an integer ≥ 0 (0 or -1 = off)');
  const repetitionPenalty = number(o, 'repetition_penalty', 1, (v) => v > 0 && v <= 10, 'a number in (0, 10] (1 = off)');
  let seed: number | undefined;
  if (o.seed !== undefined && o.seed !== null) seed = number(o, 'seed', 0, int, 'an integer');
  if (o.stream !== undefined && o.stream !== null && typeof o.stream !== 'boolean')
    throw invalid('stream', `stream: expected a boolean, got ${kind(o.stream)}`);
  const stream = o.stream === true;
  let includeUsage = false;
  if (o.stream_options !== undefined && o.stream_options !== null) {
    const so = o.stream_options;
    if (!stream) throw invalid('stream_options', 'stream_options: only allowed when stream is true');
    if (typeof so !== 'object' || Array.isArray(so)) throw invalid('stream_options', `stream_options: expected an object, got ${kind(so)}`);
    for (const k of Object.keys(so)) {
      if (k !== 'include_usage')
        throw invalid(`stream_options.${clipInput(k)}`, `stream_options.${clipInput(k)}: unknown field, expected include_usage`);
    }
    const iu = (so as { include_usage?: unknown }).include_usage;
    if (iu !== undefined && iu !== null && typeof iu !== 'boolean')
      throw invalid('stream_options.include_usage', `stream_options.include_usage: expected a boolean, got ${kind(iu)}`);
    includeUsage = iu === true;
  }
  neutral(o, 'n', (v) => v === 1, 'one choice per request; expected 1');
  neutral(o, 'best_of', (v) => v === 1, 'expected 1');
  neutral(o, 'echo', (v) => v === false, 'expected false');
  neutral(o, 'logprobs', (v) => v === 0 || v === false, 'expected null');
  neutral(o, 'suffix', (v) => v === '', 'expected null');
  neutral(
    o,
    'logit_bias',
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0,
    'expected null or {}',
  );
  neutral(o, 'presence_penalty', (v) => v === 0, 'expected 0; repetition_penalty is available');
  neutral(o, 'frequency_penalty', (v) => v === 0, 'expected 0; repetition_penalty is available');
  if (o.user !== undefined && o.user !== null && typeof o.user !== 'string')
    throw invalid('user', `user: expected a string, got ${kind(o.user)}`);
  return {
    promptText: text,
    promptIds: ids,
    maxTokens,
    sampling: { temperature, topP, topK: Math.max(0, topK), repetitionPenalty, seed },
    stop: stopStrings(o.stop, ctx.encode !== undefined),
    stream,
    includeUsage,
  };
}
