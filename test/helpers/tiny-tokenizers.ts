/**
 * Small tokenizer.json documents built in code, for tests: a GPT-2/NeoX-style byte-level BPE (so
 * multi-byte characters span several tokens) and a 6-word WordLevel vocabulary that fits the toy
 * model (ids 0–5, `</s>` = 5 = its EOS).
 */

/** GPT-2's bytes_to_unicode: every byte gets a printable stand-in character. */
function bytesToUnicode(): Map<number, string> {
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

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** tokenizer.json of a byte-level BPE without merges: token id = byte value (256 ids, no specials). */
export function byteTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  for (const [b, c] of bytesToUnicode()) vocab[c] = b;
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

/** Byte-level BPE: `<|endoftext|>` = 0 (special), the 256 bytes = 1…256, then a few merges. */
export function byteLevelBpe(): { json: object; config: object } {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  let id = 1;
  for (let b = 0; b < 256; b++) vocab[b2u.get(b)!] = id++;
  const merges = [['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 'w'], ['Ġw', 'o'], ['Ġ', 'S'], ['ĠS', 'T']];
  for (const [a, b] of merges) vocab[a! + b!] = id++;
  return {
    json: {
      version: '1.0',
      added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: BYTE_LEVEL,
      post_processor: BYTE_LEVEL,
      decoder: BYTE_LEVEL,
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: merges.map((m) => m.join(' ')) },
    },
    config: { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>', tokenizer_class: 'GPTNeoXTokenizer' },
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
