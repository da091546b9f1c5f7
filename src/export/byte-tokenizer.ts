/**
 * The project's own byte-level tokenizer, written with random-weight exports so that string prompts
 * work without a downloaded tokenizer: HF tokenizers' `tokenizer.json` format (ByteLevel
 * pre-tokenizer, post-processor and decoder; a BPE model without merges), as @huggingface/tokenizers
 * loads it (src/runtime/tokenizer.ts).
 *
 * Layout, GPT-NeoX's at the low end: `<|endoftext|>` = 0 (special; the EOS, as in the real
 * Mamba-2 tokenizer), byte b = id b + 1 (as GPT-2's printable stand-in characters). 257 ids in all:
 * a model needs at least that many real vocabulary rows to take it. Any text round-trips (every byte
 * has its token); a random-weight model's output is random bytes, decoded as UTF-8 (invalid
 * sequences as U+FFFD).
 */

/** The end-of-text token (id 0). */
export const END_OF_TEXT = '<|endoftext|>';

/** Ids the byte tokenizer uses: `<|endoftext|>` and the 256 bytes. */
export const BYTE_TOKENIZER_SIZE = 257;

/** ByteLevel as GPT-2 / GPT-NeoX configure it (pre-tokenizer, post-processor and decoder). */
export const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;

/** GPT-2's bytes_to_unicode: every byte gets a printable stand-in character. */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}

export interface AddedToken {
  id: number;
  content: string;
}

/** A byte-level BPE tokenizer.json over `vocab` (stand-in characters → ids), with `merges` and special `added` tokens. */
export function byteLevelJson(vocab: Record<string, number>, merges: readonly string[] = [], added: readonly AddedToken[] = []): object {
  return {
    version: '1.0',
    added_tokens: added.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [...merges],
    },
  };
}

/** The vocab of the byte tokenizer: `<|endoftext|>` = 0, byte b = b + 1. */
export function byteTokenizerVocab(): Record<string, number> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = { [END_OF_TEXT]: 0 };
  for (let b = 0; b < 256; b++) vocab[b2u.get(b)!] = b + 1;
  return vocab;
}

/** tokenizer.json and tokenizer_config.json of the byte tokenizer (see the module doc). */
export function byteTokenizer(): { json: object; config: object } {
  return {
    json: byteLevelJson(byteTokenizerVocab(), [], [{ id: 0, content: END_OF_TEXT }]),
    config: {
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: END_OF_TEXT,
      bos_token: END_OF_TEXT,
      unk_token: END_OF_TEXT,
      model_max_length: 1_000_000_000,
      mamba2_onnx: 'byte-level tokenizer written by mamba2-onnx for a random-weight export (not a trained tokenizer)',
    },
  };
}
