/**
 * Prefix-state cache: the recurrent state after a token prefix, with the logits of its last
 * position. A Mamba-2 state summarises everything before it, so a prompt that starts with a cached
 * prefix continues from that state and prefills only the rest; a prompt equal to a cached prefix
 * skips the prefill and samples from the stored logits.
 *
 *   lookup(ids):  prefix hashes h[ℓ] for ℓ = 1…L (one pass) → for each cached length ℓ ≤ L, longest
 *                 first: key (ℓ, h[ℓ]) in the map? → compare the ids (no false hits) → entry
 *
 * LRU within a byte budget (state tensors + logits + ids). Entries are never mutated after insert:
 * callers feed their arrays to the model as inputs (read-only) and copy rows out of them.
 */
import type { StateRow } from '../runtime/state-rows.js';

export interface CacheEntry {
  readonly ids: readonly number[];
  /** One row per state tensor, in the model's spec order. */
  readonly rows: readonly StateRow[];
  /** Logits at the prefix's last position (vocab-sized). */
  readonly logits: Float32Array;
  readonly bytes: number;
}

export interface PrefixCacheStats {
  hits: number;
  misses: number;
  /** Prompt tokens that did not need a prefill thanks to hits. */
  hitTokens: number;
  inserts: number;
  evictions: number;
  entries: number;
  bytes: number;
  maxBytes: number;
}

/** Two 32-bit FNV-1a style hashes over the ids, for every prefix length (index ℓ = first ℓ ids). */
function prefixHashes(ids: readonly number[]): { a: Uint32Array; b: Uint32Array } {
  const a = new Uint32Array(ids.length + 1);
  const b = new Uint32Array(ids.length + 1);
  let ha = 0x811c9dc5;
  let hb = 0x01000193;
  a[0] = ha;
  b[0] = hb;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    ha = Math.imul(ha ^ id, 0x01000193) >>> 0;
    hb = Math.imul((hb ^ (id * 0x9e3779b1)) >>> 0, 0x85ebca6b) >>> 0;
    hb ^= hb >>> 13;
    a[i + 1] = ha;
    b[i + 1] = hb;
  }
  return { a, b };
}

const keyOf = (len: number, h: { a: Uint32Array; b: Uint32Array }): string => `${len}:${h.a[len]}:${h.b[len]}`;

export class PrefixCache {
  /** Insertion order is recency order (oldest first). */
  private readonly entries = new Map<string, CacheEntry>();
  /** How many entries have each prefix length (lookup only probes these lengths). */
  private readonly lengths = new Map<number, number>();
  private sortedLengths: number[] = [];
  private totalBytes = 0;
  private readonly counters = { hits: 0, misses: 0, hitTokens: 0, inserts: 0, evictions: 0 };

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw new RangeError(`PrefixCache: maxBytes expected an integer ≥ 0, got ${maxBytes}`);
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** The entry for the longest cached prefix of `ids` (the whole of `ids` included), or undefined. Counts a hit or a miss. */
  lookup(ids: readonly number[]): CacheEntry | undefined {
    if (!this.enabled) return undefined;
    const h = prefixHashes(ids);
    for (const len of this.sortedLengths) {
      if (len > ids.length) continue;
      const key = keyOf(len, h);
      const e = this.entries.get(key);
      if (!e || !samePrefix(e.ids, ids)) continue;
      this.entries.delete(key); // most recently used: to the end
      this.entries.set(key, e);
      this.counters.hits++;
      this.counters.hitTokens += len;
      return e;
    }
    this.counters.misses++;
    return undefined;
  }

  /** Is this exact prefix cached? (No recency update, no hit/miss counted.) */
  has(ids: readonly number[]): boolean {
    if (!this.enabled || !this.lengths.has(ids.length)) return false;
    const e = this.entries.get(keyOf(ids.length, prefixHashes(ids)));
    return e !== undefined && samePrefix(e.ids, ids);
  }

  /**
   * Keep the state after `ids`. The cache takes ownership of `rows` and `logits` (the caller must
   * not change them afterwards). Returns false when the entry alone exceeds the budget.
   */
  insert(ids: readonly number[], rows: readonly StateRow[], logits: Float32Array): boolean {
    if (!this.enabled || ids.length === 0) return false;
    const bytes = rows.reduce((s, r) => s + r.byteLength, 0) + logits.byteLength + ids.length * 8 + 256;
    if (bytes > this.maxBytes) return false;
    const key = keyOf(ids.length, prefixHashes(ids));
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, { ids: ids.slice(), rows, logits, bytes });
    this.totalBytes += bytes;
    this.counters.inserts++;
    if (!this.lengths.has(ids.length)) {
      this.lengths.set(ids.length, 0);
      this.sortedLengths = [...this.lengths.keys()].sort((x, y) => y - x);
    }
    this.lengths.set(ids.length, this.lengths.get(ids.length)! + 1);
    for (const [k, e] of this.entries) {
      if (this.totalBytes <= this.maxBytes) break;
      this.remove(k, e);
      this.counters.evictions++;
    }
    return true;
  }

  clear(): void {
    for (const [k, e] of [...this.entries]) this.remove(k, e);
  }

  stats(): PrefixCacheStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.totalBytes, maxBytes: this.maxBytes };
  }

  private remove(key: string, e: CacheEntry): void {
    this.entries.delete(key);
    this.totalBytes -= e.bytes;
    const n = this.lengths.get(e.ids.length)! - 1;
    if (n > 0) this.lengths.set(e.ids.length, n);
    else {
      this.lengths.delete(e.ids.length);
      this.sortedLengths = this.sortedLengths.filter((l) => l !== e.ids.length);
    }
  }
}

function samePrefix(prefix: readonly number[], ids: readonly number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== ids[i]) return false;
  return true;
}
