/** PrefixCache: longest-prefix lookup, exact-id verification, LRU within the byte budget. */
import { describe, expect, it } from 'vitest';
import { PrefixCache } from './prefix-cache.js';

const rows = (v: number, n = 100): Float32Array[] => [new Float32Array(n).fill(v)];
const logits = (v: number): Float32Array => Float32Array.of(v, v);

describe('PrefixCache', () => {
  it('finds the longest cached prefix, the whole prompt included', () => {
    const c = new PrefixCache(1 << 20);
    c.insert([1, 2], rows(2), logits(2));
    c.insert([1, 2, 3, 4], rows(4), logits(4));
    c.insert([9], rows(9), logits(9));
    expect(c.lookup([1, 2, 3, 4, 5])?.ids).toEqual([1, 2, 3, 4]);
    expect(c.lookup([1, 2, 3, 4])?.ids).toEqual([1, 2, 3, 4]);
    expect(c.lookup([1, 2, 3])?.ids).toEqual([1, 2]);
    expect(c.lookup([2, 1])).toBeUndefined();
    expect(c.stats()).toMatchObject({ hits: 3, misses: 1, hitTokens: 10, entries: 3 });
  });

  it('never returns an entry whose ids differ (hash keys are verified)', () => {
    const c = new PrefixCache(1 << 20);
    for (let i = 0; i < 200; i++) c.insert([i, i + 1, i + 2], rows(i, 1), logits(i));
    for (let i = 0; i < 200; i++) {
      const e = c.lookup([i, i + 1, i + 2, 7]);
      expect(e?.ids).toEqual([i, i + 1, i + 2]);
      expect(e!.rows[0]![0]).toBe(i);
    }
    expect(c.lookup([0, 2, 2])).toBeUndefined();
  });

  it('evicts the least recently used entries to stay within its bytes', () => {
    const one = 400 + 8 + 3 * 8 + 256; // rows + logits + ids + overhead
    const c = new PrefixCache(3 * one);
    c.insert([1, 1, 1], rows(1), logits(1));
    c.insert([2, 2, 2], rows(2), logits(2));
    c.insert([3, 3, 3], rows(3), logits(3));
    c.lookup([1, 1, 1]); // 1 is now the most recent: 2 goes first
    c.insert([4, 4, 4], rows(4), logits(4));
    expect(c.has([2, 2, 2])).toBe(false);
    expect(c.has([1, 1, 1]) && c.has([3, 3, 3]) && c.has([4, 4, 4])).toBe(true);
    expect(c.stats()).toMatchObject({ entries: 3, evictions: 1, bytes: 3 * one });
    expect(c.insert([5], rows(5, 10_000), logits(5))).toBe(false); // larger than the whole budget
  });

  it('is off with a budget of 0', () => {
    const c = new PrefixCache(0);
    expect(c.insert([1], rows(1), logits(1))).toBe(false);
    expect(c.lookup([1])).toBeUndefined();
    expect(() => new PrefixCache(-1)).toThrow(/maxBytes/);
  });
});
