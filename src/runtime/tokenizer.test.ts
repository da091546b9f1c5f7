import { describe, expect, it } from 'vitest';
import { IncrementalDecoder, StopStringMatcher } from './detokenize.js';
import { byteLevelBpe, toyWordLevel } from '../../test/helpers/tiny-tokenizers.js';
import { TextTokenizer } from './tokenizer.js';

const bpe = (): TextTokenizer => {
  const t = byteLevelBpe();
  return TextTokenizer.fromJSON(t.json, t.config);
};

/** Stream `ids` through the incremental decoder + stop matcher the way generate() does. */
function streamText(
  tok: TextTokenizer,
  ids: number[],
  stops: string[] = [],
  context: number[] = [],
): { pieces: string[]; text: string; stoppedAt: number } {
  const dec = new IncrementalDecoder(tok, context);
  const stop = new StopStringMatcher(stops);
  const pieces: string[] = [];
  let stoppedAt = -1;
  for (const [i, id] of ids.entries()) {
    const r = stop.push(dec.push(id));
    pieces.push(r.text);
    if (r.stopped) {
      stoppedAt = i;
      break;
    }
  }
  if (stoppedAt < 0) {
    const tail = stop.push(dec.flush());
    pieces.push(tail.text + stop.flush());
    if (tail.stopped) stoppedAt = ids.length;
  }
  return { pieces, text: pieces.join(''), stoppedAt };
}

describe('TextTokenizer on a byte-level BPE tokenizer.json built by the test', () => {
  it('round-trips ASCII, multi-byte characters and special tokens', () => {
    const tok = bpe();
    for (const text of ['hello world', 'hello world é中 🙂', '  spaces\tand\nnewlines ', 'wo wo hellohello']) {
      const ids = tok.encode(text);
      expect(ids.length).toBeGreaterThan(0);
      expect(tok.decode(ids)).toBe(text);
    }
    const ids = tok.encode('hello<|endoftext|>');
    expect(ids).toEqual([tok.tokenToId('hello'), 0]);
    expect(tok.decode(ids)).toBe('hello');
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('hello<|endoftext|>');
  });

  it('uses the merges and reads special ids from tokenizer_config.json', () => {
    const tok = bpe();
    expect(tok.encode('hello')).toEqual([tok.tokenToId('hello')]);
    expect(tok.eosTokenId).toBe(0);
    expect(tok.bosTokenId).toBe(0);
    expect(tok.specialIds.has(0)).toBe(true);
    expect(tok.size).toBe(257 + 8);
    expect(tok.idToToken(tok.tokenToId('Ġwo')!)).toBe('Ġwo');
  });

  it('WordLevel with eos_token given as {content}', () => {
    const t = toyWordLevel();
    const tok = TextTokenizer.fromJSON(t.json, t.config);
    expect(tok.encode('ab cd ij')).toEqual([0, 1, 4]);
    expect(tok.decode([0, 1, 5])).toBe('ab cd');
    expect(tok.eosTokenId).toBe(5);
  });

  it('rejects something that is not a tokenizer.json', () => {
    expect(() => TextTokenizer.fromJSON({ vocab: {} }, {}, 'x/tokenizer.json')).toThrow(/x\/tokenizer\.json.*"model"/);
    expect(() => TextTokenizer.fromJSON(null)).toThrow(TypeError);
    expect(() => TextTokenizer.fromJSON(byteLevelBpe().json, 'nope')).toThrow(TypeError);
  });
});

describe('IncrementalDecoder', () => {
  it('streams text that concatenates to the full decode, never emitting a broken character', () => {
    const tok = bpe();
    const text = 'hello wo é中🙂 x';
    const ids = tok.encode(text);
    expect(ids.length).toBeGreaterThan(text.length / 2); // multi-byte chars span several tokens
    const { pieces, text: out } = streamText(tok, ids);
    expect(out).toBe(text);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    // The emoji's 4 byte tokens produce nothing until the last one.
    const emoji = tok.encode('🙂');
    expect(emoji).toHaveLength(4);
    const dec = new IncrementalDecoder(tok);
    expect(emoji.map((id) => dec.push(id))).toEqual(['', '', '', '🙂']);
  });

  it('keeps leading spaces right when given the prompt as context', () => {
    const tok = bpe();
    const prompt = tok.encode('hello');
    const cont = tok.encode(' wo wo');
    expect(streamText(tok, cont, [], prompt).text).toBe(' wo wo');
  });

  it('flush returns an unfinished character as U+FFFD at the end', () => {
    const tok = bpe();
    const dec = new IncrementalDecoder(tok);
    const [first] = tok.encode('é');
    expect(dec.push(first!)).toBe('');
    expect(dec.flush()).toBe('\uFFFD');
  });

  it('skips special tokens', () => {
    const tok = bpe();
    expect(streamText(tok, [...tok.encode('hello'), 0]).text).toBe('hello');
  });
});

describe('StopStringMatcher', () => {
  it('cuts at a stop string spanning pieces and holds back possible prefixes', () => {
    const m = new StopStringMatcher(['STOP']);
    expect(m.push('abc S')).toEqual({ text: 'abc ', stopped: false });
    expect(m.push('T')).toEqual({ text: '', stopped: false });
    expect(m.push('OPxyz')).toEqual({ text: '', stopped: true });
    expect(m.stopped).toBe(true);
    expect(m.push('more')).toEqual({ text: '', stopped: true });
    expect(m.flush()).toBe('');
  });

  it('releases held text that turns out not to be a stop string', () => {
    const m = new StopStringMatcher(['STOP']);
    expect(m.push('ST')).toEqual({ text: '', stopped: false });
    expect(m.push('ART')).toEqual({ text: 'START', stopped: false });
    expect(m.push('S')).toEqual({ text: '', stopped: false });
    expect(m.flush()).toBe('S');
  });

  it('takes the earliest of several stop strings', () => {
    const m = new StopStringMatcher(['world', 'lo w']);
    expect(m.push('hello world')).toEqual({ text: 'hel', stopped: true });
  });

  it('passes text through without stop strings; rejects empty ones', () => {
    expect(new StopStringMatcher([]).push('abc')).toEqual({ text: 'abc', stopped: false });
    expect(() => new StopStringMatcher([''])).toThrow(RangeError);
  });

  it('cuts correctly across token boundaries of a real tokenizer', () => {
    const tok = bpe();
    const ids = tok.encode('hello wo STOP here');
    const r = streamText(tok, ids, [' ST']);
    expect(r.text).toBe('hello wo');
    // The stop is found at the token that completes ' ST' (the merged 'ĠST' token).
    expect(ids[r.stoppedAt]).toBe(tok.tokenToId('ĠST'));
    // A stop string that starts inside one token and ends in the next.
    const r2 = streamText(tok, tok.encode('hello world'), ['lo w']);
    expect(r2.text).toBe('hel');
    // A stop string inside a multi-byte sequence.
    const r3 = streamText(tok, tok.encode('ab中cd'), ['中c']);
    expect(r3.text).toBe('ab');
    // No stop: everything, nothing held back.
    expect(streamText(tok, tok.encode('hello S'), ['STOP']).text).toBe('hello S');
  });
});
