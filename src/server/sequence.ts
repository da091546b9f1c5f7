/**
 * One request inside the engine: its prompt, where its prefill stands, its sampler (own seeded
 * RNG), the streaming detokenizer and stop-string matcher, and the sink its tokens go to.
 *
 *   queued ──slot──▶ prefill (windows; or a cache hit) ──▶ ready (first token sampled)
 *          ──join──▶ decode (one row of the decode batch) ──▶ done
 * A cancelled sequence leaves at the next step boundary; its sink hears nothing more.
 */
import { IncrementalDecoder, StopStringMatcher } from '../runtime/detokenize.js';
import { mulberry32, randomSeed, sampleToken, type Rng, type SamplingParams } from '../runtime/sampling.js';
import type { TextTokenizer } from '../runtime/tokenizer.js';
import type { StateRow } from './prefix-cache.js';
import type { SamplingRequest } from './validate.js';

export type FinishReason = 'stop' | 'length';

export interface TokenChunk {
  tokenId: number;
  /** Text that became final with this token ('' while a character or a possible stop string is incomplete). */
  text: string;
  index: number;
}

export interface SequenceResult {
  outputIds: number[];
  text: string;
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
  readonly out: number[] = [];
  readonly seed: number;
  readonly enqueuedAt = performance.now();
  private readonly rng: Rng;
  private readonly params: SamplingParams;
  private readonly history: number[] | undefined;
  private readonly decoder: IncrementalDecoder | undefined;
  private readonly stopper: StopStringMatcher;
  private text = '';
  private finish: 'stop_token' | 'stop_string' | 'length' | undefined;

  constructor(
    readonly spec: SequenceSpec,
    readonly sink: SequenceSink,
    tokenizer: TextTokenizer | undefined,
    private readonly stopIds: ReadonlySet<number>,
    realVocabSize: number,
  ) {
    const s = spec.sampling;
    this.seed = s.seed ?? randomSeed();
    this.rng = mulberry32(this.seed);
    this.params = { temperature: s.temperature, topK: s.topK, topP: s.topP, repetitionPenalty: s.repetitionPenalty, realVocabSize };
    this.history = s.repetitionPenalty !== 1 ? spec.promptIds.slice() : undefined;
    this.decoder = tokenizer ? new IncrementalDecoder(tokenizer, spec.promptIds) : undefined;
    this.stopper = new StopStringMatcher(spec.stop);
  }

  get promptLength(): number {
    return this.spec.promptIds.length;
  }

  get lastToken(): number {
    return this.out[this.out.length - 1]!;
  }

  get finished(): boolean {
    return this.finish !== undefined;
  }

  /** Sample the next token from `logits` and send it to the sink; true when the sequence is finished. */
  sample(logits: Float32Array): boolean {
    const id = sampleToken(logits, this.history ?? [], this.params, this.rng);
    this.out.push(id);
    this.history?.push(id);
    let piece = this.decoder ? this.decoder.push(id) : '';
    const s = this.stopper.push(piece);
    piece = s.text;
    if (s.stopped) this.finish = 'stop_string';
    else if (this.stopIds.has(id)) this.finish = 'stop_token';
    else if (this.out.length >= this.spec.maxTokens) this.finish = 'length';
    if (this.finish !== undefined && this.finish !== 'stop_string') {
      const tail = this.stopper.push(this.decoder ? this.decoder.flush() : '');
      piece += tail.text + this.stopper.flush();
      if (tail.stopped) this.finish = 'stop_string';
    }
    this.text += piece;
    this.sink.token({ tokenId: id, text: piece, index: this.out.length - 1 });
    return this.finish !== undefined;
  }

  /** Report the result (once finished). */
  complete(): void {
    this.phase = 'done';
    this.rows = undefined;
    this.sink.done({
      outputIds: this.out.slice(),
      text: this.text,
      finishReason: this.finish === 'length' ? 'length' : 'stop',
      promptTokens: this.promptLength,
      completionTokens: this.out.length,
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
