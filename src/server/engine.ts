/**
 * The serving engine: continuous batching over one ForwardModel (a Mamba2Model, or any backend
 * behind runtime/forward-model.ts).
 *
 *   submit ─▶ queue ─(free slot)─▶ prefill: cache lookup, then windows aligned to multiples of W
 *                                  (one forward call per loop turn; sequences whose next window has
 *                                  the same length share it, rows stacked along batch)
 *                                      │ prompt done: sample the first token
 *                                      ▼
 *                          ready ─(join between steps)─▶ decode batch: ONE forward call per step
 *                                  for all rows ([[last id] per row], states stacked), per-row
 *                                  sampling; finished or cancelled rows leave between steps
 *
 * A prompt remainder of at most `stepPrefillMax` tokens (a short prompt, the tail after the last
 * window, the rest after a cache hit) skips the prefill call: the sequence joins the decode batch
 * at once and feeds one prompt token per step (a chunked call costs about as much as ~5 single
 * steps whatever its length below the chunk size, a row in the batch much less).
 *
 * Each loop turn runs at most one prefill call and one decode step, so a long prompt delays the
 * running streams by one window at a time. Which path a prompt position takes depends only on the
 * position and the prompt length (windows start at multiples of W), so a cache hit at a window
 * boundary (or on the whole prompt) replays exactly the calls of a cold run: results with and
 * without a hit are bit-identical. Rows of one batch never mix (the model is row-wise), so a
 * request gives the same tokens alone or among others.
 *
 * Hybrids (KV caches in the state, whose length is each sequence's own) run unbatched: prefill
 * calls take one sequence each and the decode step is one call per sequence (solo-batch.ts).
 */
import { describe } from '../runtime/backend.js';
import { stopIdSet } from '../runtime/decoder.js';
import type { ForwardModel } from '../runtime/forward-model.js';
import { sliceRow, stackRows, stateArrays, stateFromArrays, zeroRows, type StateRow } from '../runtime/state-rows.js';
import { DecodeBatch, type DecodeRows } from './decode-batch.js';
import { QueueFullError, unavailable } from './errors.js';
import { RateWindow, type EngineStats, type Outcome } from './metrics.js';
import { PrefixCache } from './prefix-cache.js';
import { Sequence, type SequenceSink, type SequenceSpec } from './sequence.js';
import { SoloBatch } from './solo-batch.js';

export interface EngineOptions {
  maxBatch: number;
  maxQueue: number;
  prefillWindow: number;
  cacheBytes: number;
  /** Prompt remainders of at most this many tokens are fed through the decode batch (default 8; 0 = never). */
  stepPrefillMax?: number;
  /** Keep the state at the end of each generation (prompt + output) for follow-up prompts. */
  cacheGenerations?: boolean;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class Engine {
  readonly cache: PrefixCache;
  private readonly queue: Sequence[] = [];
  private readonly prefilling: Sequence[] = [];
  private readonly ready: Sequence[] = [];
  private readonly batch: DecodeRows<Sequence>;
  private readonly stopIds: ReadonlySet<number>;
  private readonly rate = new RateWindow();
  private readonly counts = { promptTokens: 0, prefillTokens: 0, generatedTokens: 0, decodeSteps: 0, prefillCalls: 0, lastBatchSize: 0 };
  private readonly outcomes: Record<Outcome, number> = { ok: 0, cancelled: 0, error: 0, rejected: 0 };
  private wake: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private closedReason: string | undefined;
  private readonly loopDone: Promise<void>;

  constructor(
    readonly model: ForwardModel,
    readonly opts: EngineOptions,
  ) {
    if (model.deviceState) throw new Error('Engine: the model keeps its states on the device; load it with deviceState: false');
    this.cache = new PrefixCache(opts.cacheBytes);
    this.batch = model.hasKvCache ? new SoloBatch<Sequence>(model.specs) : new DecodeBatch<Sequence>(model.specs);
    this.stopIds = stopIdSet(model.config, model.tokenizer);
    this.loopDone = this.loop();
  }

  /** Add a request. Throws QueueFullError (429) when all slots are busy and the queue is full. */
  submit(spec: SequenceSpec, sink: SequenceSink, signal?: AbortSignal): Sequence {
    if (this.closedReason !== undefined) throw unavailable(this.closedReason, 'shutting_down');
    if (this.active() >= this.opts.maxBatch && this.queue.length >= this.opts.maxQueue) {
      this.outcomes.rejected++;
      throw new QueueFullError(this.opts.maxQueue);
    }
    const seq = new Sequence(spec, sink, this.model.tokenizer, this.stopIds, this.model.config.realVocabSize);
    this.queue.push(seq);
    if (signal) {
      const onAbort = (): void => this.cancel(seq);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    this.wake?.();
    return seq;
  }

  /** Stop this sequence: it leaves at the next step boundary and its sink hears nothing more. */
  cancel(seq: Sequence): void {
    if (seq.phase === 'done' || seq.cancelled) return;
    seq.cancelled = true;
    const q = this.queue.indexOf(seq);
    if (q >= 0) {
      this.queue.splice(q, 1);
      this.retire('cancelled');
    }
    this.wake?.();
  }

  /** Refuse new requests from now on (503 with `reason`). */
  close(reason: string): void {
    this.closedReason ??= reason;
  }

  /** Resolves true once no request is queued or running, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([idle, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cancel everything queued or running (their sinks get `reason` as an error). */
  cancelAll(reason: string): void {
    for (const seq of [...this.queue, ...this.prefilling, ...this.ready, ...this.batch.members().map((m) => m.seq)]) {
      if (seq.phase === 'done' || seq.cancelled) continue;
      seq.sink.fail(unavailable(reason, 'cancelled'));
      this.cancel(seq);
    }
  }

  /** Stop the loop (after the step in flight) and release nothing else: the model stays the caller's. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopDone;
  }

  stats(): EngineStats {
    return {
      activeSlots: this.active(),
      maxSlots: this.opts.maxBatch,
      queueLength: this.queue.length,
      maxQueue: this.opts.maxQueue,
      decoding: this.batch.live,
      lastBatchSize: this.counts.lastBatchSize,
      prefilling: this.prefilling.length,
      requests: { ...this.outcomes },
      promptTokens: this.counts.promptTokens,
      prefillTokens: this.counts.prefillTokens,
      generatedTokens: this.counts.generatedTokens,
      decodeSteps: this.counts.decodeSteps,
      prefillCalls: this.counts.prefillCalls,
      tokensPerSecond: this.rate.rate(),
      windowSeconds: this.rate.windowMs / 1000,
      rowsCopied: this.batch.rowsCopied,
      cache: this.cache.stats(),
    };
  }

  private active(): number {
    return this.prefilling.length + this.ready.length + this.batch.live;
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.active() === 0;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.reap();
      this.admit();
      if (this.idle()) {
        for (const w of this.idleWaiters.splice(0)) w();
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      if (this.prefilling.length > 0) await this.guard(this.prefilling.slice(), () => this.prefillStep());
      this.reap();
      if (this.ready.length > 0 || this.batch.live > 0)
        await this.guard(
          this.batch.members().map((m) => m.seq),
          () => this.decodeStep(),
        );
      // Let the event loop run (HTTP I/O, aborts) even when every call above finished synchronously.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Run one step; a failure fails the sequences involved (the server keeps serving). */
  private async guard(involved: readonly Sequence[], step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(`engine step failed: ${describe(e)}`);
      this.opts.log?.('error', `engine: a model call failed, failing ${involved.length} request(s): ${err.message}`);
      for (const seq of involved) {
        if (seq.phase === 'done') continue;
        this.detach(seq);
        seq.fail(err);
        this.retire('error');
      }
    }
  }

  /** Queue → prefill while slots are free; look the prompt up in the prefix cache. */
  private admit(): void {
    while (this.queue.length > 0 && this.active() < this.opts.maxBatch) {
      const seq = this.queue.shift()!;
      this.counts.promptTokens += seq.promptLength;
      const hit = this.cache.lookup(seq.spec.promptIds);
      if (hit) {
        seq.rows = hit.rows;
        seq.pos = hit.ids.length;
        seq.cachedTokens = hit.ids.length;
        if (seq.pos === seq.promptLength) {
          this.promptDone(seq, hit.logits);
          continue;
        }
      }
      if (this.stepsRest(seq)) this.join(seq);
      else {
        seq.phase = 'prefill';
        this.prefilling.push(seq);
      }
    }
  }

  /** Is the rest of the prompt short enough to feed through the decode batch? */
  private stepsRest(seq: Sequence): boolean {
    return seq.promptLength - seq.pos <= (this.opts.stepPrefillMax ?? 8);
  }

  /** Join the decode batch at the next step (with the prompt done, or its rest to feed). */
  private join(seq: Sequence): void {
    seq.rows ??= zeroRows(this.model.specs);
    seq.phase = 'ready';
    this.ready.push(seq);
  }

  /** Keep the state after `prefix` unless it is cached already. */
  private remember(prefix: readonly number[], rows: () => StateRow[], logits: Float32Array): void {
    if (this.cache.enabled && !this.cache.has(prefix)) this.cache.insert(prefix, rows(), logits.slice());
  }

  /** Tokens in the sequence's next prefill window (windows end at multiples of W or at the prompt's end). */
  private windowLength(seq: Sequence): number {
    const W = this.opts.prefillWindow;
    return Math.min(seq.promptLength, (Math.floor(seq.pos / W) + 1) * W) - seq.pos;
  }

  /**
   * One prefill call: the oldest sequence's next window, with other sequences whose window has the
   * same length while the call stays within one window's cost (the chunked path pads each row to
   * the chunk size Q, so rows × roundUp(n, Q) ≤ roundUp(W, Q)).
   */
  private async prefillStep(): Promise<void> {
    const n = this.windowLength(this.prefilling[0]!);
    const Q = this.model.config.chunkSize;
    const roundUp = (x: number): number => Math.ceil(x / Q) * Q;
    const rowsBudget = this.model.hasKvCache ? 1 : Math.max(1, Math.floor(roundUp(this.opts.prefillWindow) / roundUp(n)));
    const group = this.prefilling.filter((s) => this.windowLength(s) === n).slice(0, rowsBudget);
    const specs = this.model.specs;
    const rows = group.map((s) => s.rows ?? zeroRows(specs));
    const arrays = group.length === 1 ? rows[0]! : stackRows(specs, rows);
    const state = stateFromArrays(this.model.backend, specs, group.length, arrays);
    const ids = group.map((s) => s.spec.promptIds.slice(s.pos, s.pos + n));
    const f = await this.model.forward(ids, state);
    this.counts.prefillCalls++;
    this.counts.prefillTokens += n * group.length;
    const out = stateArrays(f.state);
    group.forEach((seq, r) => {
      seq.rows = group.length === 1 ? out : sliceRow(specs, out, r, group.length);
      seq.pos += n;
      const logits = f.logits.at(r, -1).slice();
      const prefix = seq.spec.promptIds.slice(0, seq.pos);
      const boundary = seq.pos % this.opts.prefillWindow === 0 || seq.pos === seq.promptLength;
      const rows = seq.rows;
      if (boundary) this.remember(prefix, () => rows.slice(), logits);
      if (seq.cancelled) return; // reaped next turn
      if (seq.pos === seq.promptLength) {
        this.prefilling.splice(this.prefilling.indexOf(seq), 1);
        this.promptDone(seq, logits);
      } else if (this.stepsRest(seq)) {
        this.prefilling.splice(this.prefilling.indexOf(seq), 1);
        this.join(seq);
      }
    });
  }

  /** The prompt is in the state: sample the first token, then join the decode batch (or finish). */
  private promptDone(seq: Sequence, logits: Float32Array): void {
    this.counts.generatedTokens++;
    this.rate.add(1);
    if (seq.sample(logits)) {
      seq.complete();
      this.retire('ok');
      return;
    }
    this.join(seq);
  }

  /** One decode step for every row of the batch; new sequences join first. */
  private async decodeStep(): Promise<void> {
    const joiners = this.ready.splice(0).filter((s) => {
      if (!s.cancelled) return true;
      s.phase = 'done';
      this.retire('cancelled');
      return false;
    });
    this.batch.add(joiners.map((seq) => ({ seq, rows: seq.rows! })));
    for (const seq of joiners) {
      seq.phase = 'decode';
      seq.rows = undefined;
    }
    // Holes are kept while someone may fill them soon; otherwise the batch shrinks.
    if (this.batch.holes > 0 && this.queue.length === 0 && this.prefilling.length === 0) this.batch.compact();
    if (this.batch.live === 0) {
      this.batch.compact();
      return;
    }
    const members = this.batch.members();
    const ids: number[][] = Array.from({ length: this.batch.size }, () => [0]);
    for (const { seq, row } of members) ids[row]![0] = seq.pos < seq.promptLength ? seq.spec.promptIds[seq.pos]! : seq.lastToken;
    const logitsAt = await this.batch.step(this.model, ids);
    this.counts.decodeSteps++;
    this.counts.lastBatchSize = ids.length;
    let produced = 0;
    for (const { seq, row } of members) {
      if (seq.cancelled) continue;
      const logits = logitsAt(row);
      if (seq.pos < seq.promptLength) {
        // feeding the prompt: its logits matter only after the last prompt token
        seq.pos++;
        this.counts.prefillTokens++;
        if (seq.pos < seq.promptLength) continue;
        this.remember(seq.spec.promptIds, () => this.batch.rowsOf(seq), logits);
      }
      produced++;
      if (!seq.sample(logits)) continue;
      if (this.opts.cacheGenerations !== false)
        this.remember([...seq.spec.promptIds, ...seq.out.slice(0, -1)], () => this.batch.rowsOf(seq), logits);
      this.batch.remove(seq);
      seq.complete();
      this.retire('ok');
    }
    this.counts.generatedTokens += produced;
    this.rate.add(produced);
  }

  /** Drop cancelled sequences from wherever they are (between steps only). */
  private reap(): void {
    for (const list of [this.prefilling, this.ready]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const seq = list[i]!;
        if (!seq.cancelled) continue;
        list.splice(i, 1);
        seq.phase = 'done';
        seq.rows = undefined;
        this.retire('cancelled');
      }
    }
    for (const { seq } of this.batch.members()) {
      if (!seq.cancelled) continue;
      this.batch.remove(seq);
      seq.phase = 'done';
      this.retire('cancelled');
    }
    if (this.batch.live === 0 && this.batch.size > 0) this.batch.compact();
  }

  /** Remove a sequence from every list (after a failed step). */
  private detach(seq: Sequence): void {
    for (const list of [this.queue, this.prefilling, this.ready]) {
      const i = list.indexOf(seq);
      if (i >= 0) list.splice(i, 1);
    }
    this.batch.remove(seq);
    if (this.batch.live === 0) this.batch.compact();
  }

  private retire(outcome: Outcome): void {
    this.outcomes[outcome]++;
  }
}
