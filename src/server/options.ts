/**
 * Server options: limits, the scheduler's knobs and the HTTP safety settings, with defaults and
 * validation (RangeError naming the option, expected vs got).
 */

export interface ServeOptions {
  /** Interface to bind (default 127.0.0.1: loopback only). */
  host: string;
  /** TCP port (default 8000; 0 picks a free one). */
  port: number;
  /** The model id in /v1/models and responses (requests naming another model get a 404). */
  modelName: string;
  /** When set, /v1/* and /metrics need `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
  /** Sequences decoded together (slots): prefilling and decoding requests hold one each. */
  maxBatch: number;
  /** Requests waiting for a slot; one more gets a 429. */
  maxQueue: number;
  /** Longest prompt in tokens (400 beyond it). */
  maxPromptTokens: number;
  /** Largest `max_tokens` a request may ask for (400 beyond it). */
  maxTokens: number;
  /** `max_tokens` when a request leaves it out (OpenAI's completions default: 16). */
  defaultMaxTokens: number;
  /** Prompt tokens per prefill call: longer prompts are prefilled in windows, between decode steps. */
  prefillWindow: number;
  /** Prompt remainders of at most this many tokens skip the prefill call and are fed through the decode batch (0 = never). */
  stepPrefillMax: number;
  /** Prefix-state cache size in bytes (0 turns it off). */
  cacheBytes: number;
  /** Largest request body in bytes (413 beyond it). */
  bodyLimit: number;
  /** Time to receive a whole request, headers and body (slow clients are cut off: 408). */
  requestTimeoutMs: number;
  /** On shutdown, how long in-flight requests may run before they are cancelled. */
  shutdownGraceMs: number;
  /** Where the server reports what it does (start-up, failures); silent by default. */
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export const DEFAULT_SERVE_OPTIONS: Readonly<ServeOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 8000,
  modelName: 'mamba2',
  apiKey: undefined,
  maxBatch: 32,
  maxQueue: 64,
  maxPromptTokens: 8192,
  maxTokens: 4096,
  defaultMaxTokens: 16,
  prefillWindow: 256,
  stepPrefillMax: 8,
  cacheBytes: 512 * 2 ** 20,
  bodyLimit: 2 ** 20,
  requestTimeoutMs: 30_000,
  shutdownGraceMs: 30_000,
  log: () => {},
});

type IntKey =
  | 'port'
  | 'maxBatch'
  | 'maxQueue'
  | 'maxPromptTokens'
  | 'maxTokens'
  | 'defaultMaxTokens'
  | 'prefillWindow'
  | 'stepPrefillMax'
  | 'cacheBytes'
  | 'bodyLimit'
  | 'requestTimeoutMs'
  | 'shutdownGraceMs';

const INT_RANGES: Record<IntKey, [number, number]> = {
  port: [0, 65535],
  maxBatch: [1, 1024],
  maxQueue: [0, 1_000_000],
  maxPromptTokens: [1, 10_000_000],
  maxTokens: [1, 10_000_000],
  defaultMaxTokens: [1, 10_000_000],
  prefillWindow: [1, 1_000_000],
  stepPrefillMax: [0, 1_000_000],
  cacheBytes: [0, Number.MAX_SAFE_INTEGER],
  bodyLimit: [1024, 2 ** 31],
  requestTimeoutMs: [1, 3_600_000],
  shutdownGraceMs: [0, 3_600_000],
};

/** Fill defaults and check every option. */
export function resolveServeOptions(opts: Partial<ServeOptions> = {}): ServeOptions {
  const o: ServeOptions = { ...DEFAULT_SERVE_OPTIONS, ...dropUndefined(opts) };
  for (const [key, [min, max]] of Object.entries(INT_RANGES) as [IntKey, [number, number]][]) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new RangeError(`serve option ${key}: expected an integer in [${min}, ${max}], got ${String(v)}`);
    }
  }
  if (o.defaultMaxTokens > o.maxTokens) {
    throw new RangeError(`serve option defaultMaxTokens: expected ≤ maxTokens (${o.maxTokens}), got ${o.defaultMaxTokens}`);
  }
  if (typeof o.host !== 'string' || o.host === '')
    throw new RangeError(`serve option host: expected an interface address, got ${JSON.stringify(o.host)}`);
  if (typeof o.modelName !== 'string' || !/^[\w.:/@+-]{1,128}$/.test(o.modelName)) {
    throw new RangeError(`serve option modelName: expected 1–128 characters of [A-Za-z0-9_.:/@+-], got ${JSON.stringify(o.modelName)}`);
  }
  if (o.apiKey !== undefined && (typeof o.apiKey !== 'string' || o.apiKey.length < 1)) {
    throw new RangeError('serve option apiKey: expected a non-empty string');
  }
  return o;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
