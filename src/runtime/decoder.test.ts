/** RowDecoder: sampling, streaming text, stop strings, stop ids, budgets and finish reasons, without a model. */
import { describe, expect, it } from 'vitest';
import { byteLevelBpe } from '../../test/helpers/tiny-tokenizers.js';
import { RowDecoder, stopIdSet, type RowDecoderOptions, type StreamChunk } from './decoder.js';
import { mulberry32 } from './sampling.js';
import { TextTokenizer } from './tokenizer.js';

const t = byteLevelBpe();
const tok = TextTokenizer.fromJSON(t.json, t.config); // <|endoftext|> = 0 (EOS), byte b = id b + 1
const V = tok.size;
const EOS = tok.eosTokenId!;
const byteId = (ch: string): number => ch.charCodeAt(0) + 1;

/** Logits whose greedy choice is `id` (then `next`, then the rest). */
function logitsFor(id: number, next?: number): Float32Array {
  const l = new Float32Array(V);
  if (next !== undefined) l[next] = 5;
  l[id] = 10;
  return l;
}

function decoder(o: Partial<RowDecoderOptions> = {}): RowDecoder {
  return new RowDecoder({
    promptIds: [byteId('>')],
    sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, realVocabSize: V },
    rng: mulberry32(1),
    stopIds: stopIdSet({}, tok),
    stopStrings: [],
    maxNewTokens: 64,
    tokenizer: tok,
    ...o,
  });
}

/** Push the greedy choices `ids` until the row finishes; the chunks it produced. */
function run(d: RowDecoder, ids: readonly number[]): StreamChunk[] {
  const chunks: StreamChunk[] = [];
  for (const id of ids) {
    if (d.finished) break;
    chunks.push(d.push(logitsFor(id)));
  }
  return chunks;
}

describe('RowDecoder', () => {
  it('cuts the text before a stop string that spans several tokens, holding back its start', () => {
    const d = decoder({ stopStrings: ['lo w'] });
    const chunks = run(d, [...'hello world'].map(byteId));
    expect(d.finishReason).toBe('stop_string');
    expect(d.text).toBe('hel');
    expect(d.out).toEqual([...'hello w'].map(byteId)); // the token completing the stop string is the last
    expect(chunks.map((c) => c.text)).toEqual(['h', 'e', '', 'l', '', '', '']); // an 'l' could start 'lo w'
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('a stop id ends the row and is kept in the ids; special tokens leave no text', () => {
    const d = decoder();
    run(d, [byteId('a'), EOS, byteId('b')]);
    expect(d.finishReason).toBe('stop_token');
    expect(d.out).toEqual([byteId('a'), EOS]);
    expect(d.text).toBe('a');
    expect(d.lastToken).toBe(EOS);
    expect(() => d.push(logitsFor(1))).toThrow(/finished \(stop_token\)/);
  });

  it('the token budget ends the row; held-back text that was no stop string is flushed', () => {
    const d = decoder({ maxNewTokens: 3, stopStrings: ['cx'] });
    const chunks = run(d, [...'abcd'].map(byteId));
    expect(d.finishReason).toBe('length');
    expect(d.out.length).toBe(3);
    expect(chunks.map((c) => c.text)).toEqual(['a', 'b', 'c']); // 'c' held, then flushed with the last token
    expect(d.text).toBe('abc');
    const none = decoder({ maxNewTokens: 0 });
    expect([none.finished, none.finishReason, none.out]).toEqual([true, 'length', []]);
  });

  it('stop ids cannot be chosen before minNewTokens', () => {
    const d = decoder({ minNewTokens: 2 });
    const a = byteId('a');
    for (let i = 0; i < 3 && !d.finished; i++) d.push(logitsFor(EOS, a)); // EOS is always the best
    expect(d.out).toEqual([a, a, EOS]);
    expect(d.finishReason).toBe('stop_token');
    expect(d.text).toBe('aa');
  });

  it('stopIdSet: the config EOS, the tokenizer EOS and extra ids', () => {
    expect([...stopIdSet({ eosTokenId: 7 }, tok, [9, 3])].sort((x, y) => x - y)).toEqual([0, 3, 7, 9]);
    expect([...stopIdSet({}, undefined)]).toEqual([]);
  });

  it('without a tokenizer the text is empty and stop ids still end the row', () => {
    const d = decoder({ tokenizer: undefined, stopIds: new Set([4]) });
    const chunks = run(d, [1, 2, 4, 5]);
    expect(chunks.map((c) => c.text)).toEqual(['', '', '']);
    expect([d.text, d.finishReason, d.out]).toEqual(['', 'stop_token', [1, 2, 4]]);
  });

  it('draws from the RNG it is given: rows sharing one RNG split one stream', () => {
    const sampling = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, realVocabSize: V };
    const flat = new Float32Array(V);
    const rng = mulberry32(42);
    const a = decoder({ sampling, rng, stopIds: new Set() });
    const b = decoder({ sampling, rng, stopIds: new Set() });
    const one = decoder({ sampling, rng: mulberry32(42), stopIds: new Set() });
    const shared: number[] = [];
    for (let i = 0; i < 4; i++) shared.push(a.push(flat).tokenId, b.push(flat).tokenId);
    const alone = Array.from({ length: 8 }, () => one.push(flat).tokenId);
    expect(shared).toEqual(alone);
  });

  it('the repetition penalty sees the prompt and the new tokens', () => {
    const a = byteId('a');
    const b = byteId('b');
    const l = new Float32Array(V);
    l[a] = 2;
    l[b] = 1.5;
    const sampling = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 2, realVocabSize: V };
    expect(decoder({ sampling, promptIds: [a] }).push(l).tokenId).toBe(b); // 2 / 2 < 1.5
    const d = decoder({ sampling, promptIds: [byteId('z')] });
    expect([d.push(l).tokenId, d.push(l).tokenId]).toEqual([a, b]);
  });
});
