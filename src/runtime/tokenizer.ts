/**
 * Text ↔ token ids through `@huggingface/tokenizers` (tokenizer.json + tokenizer_config.json, as
 * written by HF; Mamba-2 uses GPT-NeoX's byte-level BPE). Reading the files is the loader's job
 * (node-files.ts), so this module also works in a browser.
 */
import { Tokenizer } from '@huggingface/tokenizers';

import { TOKENIZER_FILE } from '../package/meta.js';

/** tokenizer_config.json writes special tokens as a string or as `{ "content": … }`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export class TextTokenizer {
  /** The id of the end-of-sequence token, when the tokenizer names one. */
  readonly eosTokenId: number | undefined;
  readonly bosTokenId: number | undefined;
  /** Ids of tokens marked special (skipped when decoding output text). */
  readonly specialIds: ReadonlySet<number>;
  /** One more than the largest id (vocab + added tokens). */
  readonly size: number;

  private constructor(
    private readonly tok: Tokenizer,
    config: Record<string, unknown>,
  ) {
    const id = (key: string): number | undefined => {
      const text = tokenText(config[key]);
      return text === undefined ? undefined : tok.token_to_id(text);
    };
    this.eosTokenId = id('eos_token');
    this.bosTokenId = id('bos_token');
    const special = new Set<number>();
    for (const [tid, t] of tok.get_added_tokens_decoder()) if (t.special) special.add(tid);
    this.specialIds = special;
    let max = -1;
    for (const v of tok.get_vocab(true).values()) max = Math.max(max, v);
    this.size = max + 1;
  }

  /**
   * From the parsed tokenizer.json (and tokenizer_config.json when present). `source` names the
   * files in error messages.
   */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = TOKENIZER_FILE): TextTokenizer {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new TypeError(
        `${source}: expected a tokenizer.json object with a "model" field, got ${tokenizerJson === null ? 'null' : typeof tokenizerJson}`,
      );
    }
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null) {
      throw new TypeError(
        `${source}: tokenizer_config.json expected an object, got ${tokenizerConfig === null ? 'null' : typeof tokenizerConfig}`,
      );
    }
    try {
      return new TextTokenizer(new Tokenizer(tokenizerJson, tokenizerConfig), tokenizerConfig as Record<string, unknown>);
    } catch (e) {
      throw new Error(`${source}: could not build the tokenizer: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  /** Token ids of `text`. `addSpecialTokens` applies the post-processor (BOS etc.), as HF does by default. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`tokenizer.encode: text expected a string, got ${typeof text}`);
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /**
   * Text of `ids`. Special tokens are skipped by default. No clean-up of tokenization spaces, so
   * that decoding is prefix-stable (needed by the incremental decoder).
   */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tok.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}
