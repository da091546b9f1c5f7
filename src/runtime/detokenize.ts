/**
 * Streaming text: turn tokens into text as they come without emitting broken characters, and cut
 * the text at stop strings that may span several tokens.
 */
import type { TextTokenizer } from './tokenizer.js';

/** How many context tokens before the first new one the decoder re-reads (as vLLM does). */
const CONTEXT = 5;
const REPLACEMENT = '\uFFFD';

/**
 * Incremental detokenizer (the prefix/read-offset scheme of vLLM's `detokenize_incrementally`):
 * each push decodes a short window and emits only the text beyond the already-read part, holding
 * back while the text ends in U+FFFD (a multi-byte character split across tokens).
 * Context ids (the prompt's last tokens) make leading-space handling match the full decode.
 */
export class IncrementalDecoder {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly tok: TextTokenizer,
    context: readonly number[] = [],
    private readonly skipSpecialTokens = true,
  ) {
    this.ids = context.slice(-CONTEXT);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  /** Add one token; returns the text that became final (often '', never a broken character). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.prefixOffset, this.readOffset);
    const full = this.decode(this.prefixOffset, this.ids.length);
    if (full.length > prefix.length && !full.endsWith(REPLACEMENT)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** Everything not emitted yet (at the end of generation; may contain U+FFFD). */
  flush(): string {
    const prefix = this.decode(this.prefixOffset, this.readOffset);
    const full = this.decode(this.prefixOffset, this.ids.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }

  private decode(start: number, end: number): string {
    return start >= end ? '' : this.tok.decode(this.ids.slice(start, end), { skipSpecialTokens: this.skipSpecialTokens });
  }
}

/**
 * Stop strings over a text stream. Text that could be the start of a stop string is held back
 * until it is clear; when a stop string appears, the text is cut just before it.
 */
export class StopStringMatcher {
  private pending = '';
  private done = false;
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops)
      if (typeof s !== 'string' || s === '') throw new RangeError(`stopStrings: expected non-empty strings, got ${JSON.stringify(s)}`);
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  get stopped(): boolean {
    return this.done;
  }

  /** Feed new text; returns the part that is safe to emit, and whether a stop string ended it. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.done) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.pending + text;
    let cut = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      this.pending = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    const hold = this.heldSuffix(buf);
    this.pending = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** The held-back text, at the end of the stream (it turned out not to be a stop string). */
  flush(): string {
    const rest = this.done ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private heldSuffix(buf: string): number {
    for (let n = Math.min(this.maxLen - 1, buf.length); n > 0; n--) {
      const tail = buf.slice(buf.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) return n;
    }
    return 0;
  }
}
