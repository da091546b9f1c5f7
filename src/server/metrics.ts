/**
 * What the engine counts, and its Prometheus text exposition (format 0.0.4) for GET /metrics.
 */
import type { PrefixCacheStats } from './prefix-cache.js';

export type Outcome = 'ok' | 'cancelled' | 'error' | 'rejected';

export interface EngineStats {
  /** Sequences holding a slot (prefilling, waiting to join, decoding). */
  activeSlots: number;
  maxSlots: number;
  /** Requests waiting for a slot. */
  queueLength: number;
  maxQueue: number;
  /** Sequences in the decode batch now, and rows fed at the last decode step (holes included). */
  decoding: number;
  lastBatchSize: number;
  prefilling: number;
  requests: Record<Outcome, number>;
  promptTokens: number;
  prefillTokens: number;
  generatedTokens: number;
  decodeSteps: number;
  prefillCalls: number;
  /** Generated tokens per second over the last `windowSeconds`. */
  tokensPerSecond: number;
  windowSeconds: number;
  /** Rows copied to move states into, inside and out of the decode batch. */
  rowsCopied: number;
  cache: PrefixCacheStats;
}

/** Tokens per second over a sliding window of recent steps. */
export class RateWindow {
  private readonly events: { t: number; n: number }[] = [];
  private sum = 0;

  constructor(readonly windowMs = 10_000) {}

  add(n: number, t = performance.now()): void {
    this.events.push({ t, n });
    this.sum += n;
    this.trim(t);
  }

  rate(t = performance.now()): number {
    this.trim(t);
    return this.sum / (this.windowMs / 1000);
  }

  private trim(t: number): void {
    while (this.events.length > 0 && this.events[0]!.t < t - this.windowMs) this.sum -= this.events.shift()!.n;
  }
}

const P = 'mamba2';

/** Prometheus text for the engine stats plus the server's own gauges. */
export function prometheusText(s: EngineStats, extra: { ready: boolean; draining: boolean; model: string }): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, values: [string, number][]): void => {
    lines.push(`# HELP ${P}_${name} ${help}`, `# TYPE ${P}_${name} ${type}`);
    for (const [labels, v] of values) lines.push(`${P}_${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  const one = (name: string, type: 'gauge' | 'counter', help: string, v: number): void => metric(name, type, help, [['', v]]);
  metric('info', 'gauge', 'served model', [[`{model="${extra.model.replace(/["\\\n]/g, '_')}"}`, 1]]);
  one('ready', 'gauge', '1 when the model is loaded and requests are accepted', extra.ready && !extra.draining ? 1 : 0);
  metric(
    'requests_total',
    'counter',
    'finished requests by outcome',
    (Object.keys(s.requests) as Outcome[]).map((o) => [`{outcome="${o}"}`, s.requests[o]]),
  );
  one('active_slots', 'gauge', 'sequences holding a slot (prefilling or decoding)', s.activeSlots);
  one('max_slots', 'gauge', 'slots (largest decode batch)', s.maxSlots);
  one('queue_length', 'gauge', 'requests waiting for a slot', s.queueLength);
  one('decoding_sequences', 'gauge', 'sequences in the decode batch', s.decoding);
  one('prefilling_sequences', 'gauge', 'sequences being prefilled', s.prefilling);
  one('batch_size', 'gauge', 'rows fed at the last decode step', s.lastBatchSize);
  one('prompt_tokens_total', 'counter', 'prompt tokens of admitted requests', s.promptTokens);
  one('prefill_tokens_total', 'counter', 'prompt tokens run through the model (cache hits excluded)', s.prefillTokens);
  one('generated_tokens_total', 'counter', 'tokens generated', s.generatedTokens);
  one('decode_steps_total', 'counter', 'batched decode steps (one forward call each)', s.decodeSteps);
  one('prefill_calls_total', 'counter', 'prefill forward calls', s.prefillCalls);
  one('tokens_per_second', 'gauge', `generated tokens per second over the last ${s.windowSeconds} s`, s.tokensPerSecond);
  one('state_rows_copied_total', 'counter', 'state rows copied into, within and out of the decode batch', s.rowsCopied);
  one('prefix_cache_hits_total', 'counter', 'prompts that continued from a cached prefix state', s.cache.hits);
  one('prefix_cache_misses_total', 'counter', 'prompts with no cached prefix', s.cache.misses);
  one('prefix_cache_hit_tokens_total', 'counter', 'prompt tokens restored from the cache', s.cache.hitTokens);
  one('prefix_cache_evictions_total', 'counter', 'entries evicted (LRU)', s.cache.evictions);
  one('prefix_cache_entries', 'gauge', 'cached prefix states', s.cache.entries);
  one('prefix_cache_bytes', 'gauge', 'bytes held by the prefix cache', s.cache.bytes);
  one('prefix_cache_max_bytes', 'gauge', 'prefix cache budget in bytes', s.cache.maxBytes);
  return `${lines.join('\n')}\n`;
}
