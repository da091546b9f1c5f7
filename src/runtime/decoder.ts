/**
 * The decoding core of one row, shared by the library's generation loop (generate.ts) and the
 * server's sequences: whoever runs the model hands each step's last-position logits to push().
 *
 *   logits ─▶ sample (stop ids suppressed before minNewTokens) ─▶ detokenize incrementally
 *          ─▶ stop string? stop id? max tokens? ─▶ chunk { tokenId, text, index } (+ finish reason)
 *
 * Text never splits a character and never shows a stop string; when the row finishes, the text
 * held back (an incomplete character, a possible stop string) is flushed into the last chunk.
 */
import { IncrementalDecoder, StopStringMatcher } from './detokenize.js';
import { sampleToken, type Rng, type SamplingParams } from './sampling.js';
import type { TextTokenizer } from './tokenizer.js';

/** Why a row ended: its token budget, a stop id (EOS included), or a stop string. */
export type FinishReason = 'length' | 'stop_token' | 'stop_string';

export interface StreamChunk {
  tokenId: number;
  /** Text that became final with this token ('' while a character or a possible stop string is incomplete). */
  text: string;
  /** Position of the token among the new tokens (0-based). */
  index: number;
}

/** The ids that end a row: the config's EOS, the tokenizer's EOS and `extra` (e.g. opts.stopTokenIds). */
export function stopIdSet(
  config: { readonly eosTokenId?: number | undefined },
  tokenizer: { readonly eosTokenId: number | undefined } | undefined,
  extra: readonly number[] = [],
): Set<number> {
  const ids = new Set<number>(extra);
  if (config.eosTokenId !== undefined) ids.add(config.eosTokenId);
  if (tokenizer?.eosTokenId !== undefined) ids.add(tokenizer.eosTokenId);
  return ids;
}

export interface RowDecoderOptions {
  /** The prompt: the detokenizer's context, and the history the repetition penalty sees. */
  promptIds: readonly number[];
  sampling: Omit<SamplingParams, 'suppress'>;
  /** The sampler's RNG (the library shares one across the rows of a call; a server sequence has its own). */
  rng: Rng;
  stopIds: ReadonlySet<number>;
  stopStrings: readonly string[];
  /** New tokens at most; 0 finishes the row at once ('length'). */
  maxNewTokens: number;
  /** Stop ids cannot be chosen before this many new tokens (default 0). */
  minNewTokens?: number;
  /** Without one the text stays '' (stop strings then never match). */
  tokenizer: TextTokenizer | undefined;
}

export class RowDecoder {
  /** The new token ids (a final stop token included). */
  readonly out: number[] = [];
  private readonly rng: Rng;
  private readonly params: SamplingParams;
  /** `params` with the stop ids suppressed (before minNewTokens). */
  private readonly early: SamplingParams;
  /** Prompt + output, kept only for the repetition penalty (the only reader of the history). */
  private readonly history: number[] | undefined;
  private readonly detok: IncrementalDecoder | undefined;
  private readonly stopper: StopStringMatcher;
  private readonly stopIds: ReadonlySet<number>;
  private readonly maxNewTokens: number;
  private readonly minNewTokens: number;
  private textSoFar = '';
  private reason: FinishReason | undefined;

  constructor(o: RowDecoderOptions) {
    this.rng = o.rng;
    this.params = { ...o.sampling };
    this.early = { ...o.sampling, suppress: o.stopIds };
    this.history = o.sampling.repetitionPenalty !== 1 ? o.promptIds.slice() : undefined;
    this.detok = o.tokenizer ? new IncrementalDecoder(o.tokenizer, o.promptIds) : undefined;
    this.stopper = new StopStringMatcher(o.stopStrings);
    this.stopIds = o.stopIds;
    this.maxNewTokens = o.maxNewTokens;
    this.minNewTokens = o.minNewTokens ?? 0;
    if (o.maxNewTokens === 0) this.reason = 'length';
  }

  /** Text of the new tokens so far, cut before a stop string. */
  get text(): string {
    return this.textSoFar;
  }

  /** Why the row ended (undefined while it runs). */
  get finishReason(): FinishReason | undefined {
    return this.reason;
  }

  get finished(): boolean {
    return this.reason !== undefined;
  }

  /** The newest token (the next step's input). */
  get lastToken(): number {
    return this.out[this.out.length - 1]!;
  }

  /** Choose the next token from one row of logits; its chunk says what became final. Throws once finished. */
  push(logits: ArrayLike<number>): StreamChunk {
    if (this.reason !== undefined) throw new Error(`RowDecoder.push: the row is finished (${this.reason})`);
    const p = this.out.length < this.minNewTokens ? this.early : this.params;
    const id = sampleToken(logits, this.history ?? [], p, this.rng);
    this.out.push(id);
    this.history?.push(id);
    const s = this.stopper.push(this.detok ? this.detok.push(id) : '');
    let piece = s.text;
    if (s.stopped) this.reason = 'stop_string';
    else if (this.stopIds.has(id)) this.reason = 'stop_token';
    else if (this.out.length >= this.maxNewTokens) this.reason = 'length';
    if (this.reason !== undefined && this.reason !== 'stop_string') {
      const tail = this.stopper.push(this.detok ? this.detok.flush() : '');
      piece += tail.text + this.stopper.flush();
      if (tail.stopped) this.reason = 'stop_string';
    }
    this.textSoFar += piece;
    return { tokenId: id, text: piece, index: this.out.length - 1 };
  }
}
