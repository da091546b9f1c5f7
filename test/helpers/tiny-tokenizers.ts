/**
 * Small tokenizer.json documents built in code, for tests: a GPT-2/NeoX-style byte-level BPE (so
 * multi-byte characters span several tokens) and a 6-word WordLevel vocabulary that fits the toy
 * model (ids 0–5, `</s>` = 5 = its EOS). The byte-level parts come from the exporter's own byte
 * tokenizer (src/export/byte-tokenizer.ts), which random-weight exports ship.
 */
import { BYTE_TOKENIZER_SIZE, byteLevelJson, bytesToUnicode, byteTokenizerVocab, END_OF_TEXT } from '../../src/export/byte-tokenizer.js';

/** tokenizer.json of a byte-level BPE without merges: token id = byte value (256 ids, no specials). */
export function byteTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  for (const [b, c] of bytesToUnicode()) vocab[c] = b;
  return byteLevelJson(vocab);
}

/**
 * Byte-level BPE: the exporter's byte tokenizer (`<|endoftext|>` = 0 (special), the 256 bytes =
 * 1…256) plus a few merges.
 */
export function byteLevelBpe(): { json: object; config: object } {
  const vocab = byteTokenizerVocab();
  let id = BYTE_TOKENIZER_SIZE;
  const merges = [
    ['h', 'e'],
    ['l', 'l'],
    ['he', 'll'],
    ['hell', 'o'],
    ['Ġ', 'w'],
    ['Ġw', 'o'],
    ['Ġ', 'S'],
    ['ĠS', 'T'],
  ];
  for (const [a, b] of merges) vocab[a! + b!] = id++;
  return {
    json: byteLevelJson(
      vocab,
      merges.map((m) => m.join(' ')),
      [{ id: 0, content: END_OF_TEXT }],
    ),
    config: { eos_token: END_OF_TEXT, bos_token: END_OF_TEXT, tokenizer_class: 'GPTNeoXTokenizer' },
  };
}

/** WordLevel over the toy model's 6 real ids; decoding joins words with spaces. */
export function toyWordLevel(): { json: object; config: object } {
  return {
    json: {
      version: '1.0',
      added_tokens: [{ id: 5, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab: { ab: 0, cd: 1, ef: 2, gh: 3, ij: 4, '</s>': 5 }, unk_token: 'ab' },
    },
    config: { eos_token: { content: '</s>' } },
  };
}
