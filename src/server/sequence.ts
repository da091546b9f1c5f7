/**
 * One request inside the engine: its prompt, where its prefill stands, and the sink its tokens go
 * to. Sampling, the streaming text and stopping are the runtime's RowDecoder, with the sequence's
 * own seeded RNG (so a request gives the same tokens alone or among others).
 *
 *   queued ──slot──▶ prefill (windows; or a cache hit) ──▶ ready (first token sampled)
 *          ──join──▶ decode (one row of the decode batch) ──▶ done
 * A cancelled sequence leaves at the next step boundary; its sink hears nothing more.
 */
import { RowDecoder, type FinishReason, type StreamChunk } from '../runtime/decoder.js';
import { mulberry32, randomSeed } from '../runtime/sampling.js';
import type { StateRow } from '../runtime/state-rows.js';
import type { TextTokenizer } from '../runtime/tokenizer.js';
import type { SamplingRequest } from './validate.js';

/** A new token and the text that became final with it (the runtime's StreamChunk). */
export type TokenChunk = StreamChunk;

export interface SequenceResult {
  outputIds: number[];
  text: string;
  /** The runtime's reason; the HTTP layer maps it to OpenAI's ('stop' | 'length'). */
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens restored from the prefix cache instead of prefilled. */
  cachedTokens: number;
  seed: number;
}

/** Where a sequence's output goes (the HTTP layer). Called synchronously from the engine loop. */
export interface SequenceSink {
  token(chunk: TokenChunk): void;
  done(result: SequenceResult): void;
  fail(error: Error): void;
}

export interface SequenceSpec {
  promptIds: readonly number[];
  maxTokens: number;
  sampling: SamplingRequest;
  stop: readonly string[];
}

export type Phase = 'queued' | 'prefill' | 'ready' | 'decode' | 'done';

export class Sequence {
  phase: Phase = 'queued';
  /** Prompt tokens already in `rows` (the prefill position). */
  pos = 0;
  /** The batch-1 state while not in the decode batch (shared read-only with the prefix cache). */
  rows: readonly StateRow[] | undefined;
  cachedTokens = 0;
  cancelled = false;
  readonly seed: number;
  readonly enqueuedAt = performance.now();
  private readonly decoder: RowDecoder;

  constructor(
    readonly spec: SequenceSpec,
    readonly sink: SequenceSink,
    tokenizer: TextTokenizer | undefined,
    stopIds: ReadonlySet<number>,
    realVocabSize: number,
  ) {
    const s = spec.sampling;
    this.seed = s.seed ?? randomSeed();
    this.decoder = new RowDecoder({
      promptIds: spec.promptIds,
      sampling: { temperature: s.temperature, topK: s.topK, topP: s.topP, repetitionPenalty: s.repetitionPenalty, realVocabSize },
      rng: mulberry32(this.seed),
      stopIds,
      stopStrings: spec.stop,
      maxNewTokens: spec.maxTokens,
      tokenizer,
    });
  }

  get promptLength(): number {
    return this.spec.promptIds.length;
  }

  /** The new token ids so far. */
  get out(): readonly number[] {
    return this.decoder.out;
  }

  get lastToken(): number {
    return this.decoder.lastToken;
  }

  get finished(): boolean {
    return this.decoder.finished;
  }

  /** Sample the next token from `logits` and send it to the sink; true when the sequence is finished. */
  sample(logits: Float32Array): boolean {
    this.sink.token(this.decoder.push(logits));
    return this.decoder.finished;
  }

  /** Report the result (once finished). */
  complete(): void {
    this.phase = 'done';
    this.rows = undefined;
    this.sink.done({
      outputIds: this.decoder.out.slice(),
      text: this.decoder.text,
      finishReason: this.decoder.finishReason!,
      promptTokens: this.promptLength,
      completionTokens: this.decoder.out.length,
      cachedTokens: this.cachedTokens,
      seed: this.seed,
    });
  }

  fail(e: Error): void {
    this.phase = 'done';
    this.rows = undefined;
    if (!this.cancelled) this.sink.fail(e);
  }
}
