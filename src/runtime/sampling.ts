/**
 * Next-token choice from one row of logits. The order of the steps follows HF transformers'
 * logits processors and warpers:
 *
 *   mask padded vocab rows (ids ≥ realVocabSize) and suppressed ids → repetition penalty
 *   → greedy argmax (temperature 0) | temperature → top-k → softmax → top-p → draw with a seeded RNG
 */

export interface SamplingParams {
  /** 0 means greedy (argmax); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 = off. */
  topP: number;
  /** CTRL / HF penalty on tokens already seen: positive logits divided by it, negative multiplied; 1 = off. */
  repetitionPenalty: number;
  /** Tokens the tokenizer really has; logits at ids ≥ this (padded embedding rows) are never chosen. */
  realVocabSize: number;
  /** Ids that must not be chosen now (e.g. EOS before minNewTokens). */
  suppress?: Iterable<number>;
}

/** A uniform [0, 1) generator. */
export type Rng = () => number;

/** mulberry32: a tiny, fast 32-bit PRNG; the same seed gives the same sequence everywhere. */
export function mulberry32(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed: expected a safe integer, got ${seed}`);
  // Fold the high bits in so that seeds differing only above bit 32 still differ.
  let a = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh random seed (for reporting, so an unseeded run can be repeated). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

/** The distribution a token is drawn from: candidate ids and their probabilities (sum 1). */
export interface Distribution {
  ids: Int32Array;
  probs: Float64Array;
}

/** Scores after masking and the repetition penalty; -Infinity where a token may not be chosen. */
function scores(logits: ArrayLike<number>, history: ArrayLike<number>, p: SamplingParams): Float64Array {
  const n = Math.min(logits.length, p.realVocabSize);
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = logits[i]!;
  if (p.repetitionPenalty !== 1) {
    const seen = new Set<number>();
    for (let i = 0; i < history.length; i++) {
      const id = history[i]!;
      if (id < n && !seen.has(id)) {
        seen.add(id);
        s[id] = s[id]! > 0 ? s[id]! / p.repetitionPenalty : s[id]! * p.repetitionPenalty;
      }
    }
  }
  for (const id of p.suppress ?? []) if (id >= 0 && id < n) s[id] = -Infinity;
  for (let i = 0; i < n; i++) if (Number.isNaN(s[i])) s[i] = -Infinity;
  return s;
}

function argmaxOf(s: Float64Array): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < s.length; i++) {
    if (s[i]! > bestScore) {
      bestScore = s[i]!;
      best = i;
    }
  }
  return best;
}

/** Higher score first, lower id on ties. */
const before = (s: Float64Array, a: number, b: number): boolean => s[a]! > s[b]! || (s[a] === s[b] && a < b);

/** Ids of the k best scores, best first (a bounded min-heap: O(V log k)). */
function topKIds(s: Float64Array, k: number): number[] {
  const heap: number[] = []; // heap[0] is the worst kept
  const worse = (a: number, b: number): boolean => before(s, b, a);
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let id = 0; id < s.length; id++) {
    if (s[id] === -Infinity) continue;
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[parent]!)) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
    } else if (before(s, id, heap[0]!)) {
      heap[0] = id;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(s, a, b) ? -1 : 1));
}

/**
 * The filtered, renormalised distribution for one row of logits. Greedy (temperature 0) gives a
 * single id with probability 1. Throws when every token is masked.
 */
export function samplingDistribution(logits: ArrayLike<number>, history: ArrayLike<number>, p: SamplingParams): Distribution {
  const s = scores(logits, history, p);
  if (p.temperature === 0) {
    const id = argmaxOf(s);
    if (id < 0) throw new RangeError('sampling: every token is masked (padded rows, suppressed ids or NaN logits)');
    return { ids: Int32Array.of(id), probs: Float64Array.of(1) };
  }
  for (let i = 0; i < s.length; i++) s[i] = s[i]! / p.temperature;
  let ids: number[];
  if (p.topK > 0 && p.topK < s.length) ids = topKIds(s, p.topK);
  else {
    ids = [];
    for (let i = 0; i < s.length; i++) if (s[i] !== -Infinity) ids.push(i);
  }
  if (ids.length === 0) throw new RangeError('sampling: every token is masked (padded rows, suppressed ids or NaN logits)');
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, s[id]!);
  let probs = ids.map((id) => Math.exp(s[id]! - max));
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((q) => q / total);
  if (p.topP < 1) {
    // A token with probability ≤ (1 − topP)/n can never be inside the nucleus (the tokens below it
    // would have to carry more than 1 − topP in all), so sort only the rest.
    const floor = (1 - p.topP) / ids.length;
    const keep: number[] = [];
    for (let i = 0; i < ids.length; i++) if (probs[i]! > floor || i === 0) keep.push(i);
    keep.sort((a, b) => probs[b]! - probs[a]! || ids[a]! - ids[b]!);
    const nucleus: number[] = [];
    let cum = 0;
    for (const i of keep) {
      nucleus.push(i);
      cum += probs[i]!;
      if (cum >= p.topP) break;
    }
    ids = nucleus.map((i) => ids[i]!);
    probs = nucleus.map((i) => probs[i]!);
    total = cum;
    probs = probs.map((q) => q / total);
  }
  return { ids: Int32Array.from(ids), probs: Float64Array.from(probs) };
}

/** Draw one id from a distribution with `rng`. */
export function draw(d: Distribution, rng: Rng): number {
  const u = rng();
  let cum = 0;
  for (let i = 0; i < d.ids.length; i++) {
    cum += d.probs[i]!;
    if (u < cum) return d.ids[i]!;
  }
  return d.ids[d.ids.length - 1]!; // rounding: cum may end just below 1
}

/** Choose the next token for one row of logits. */
export function sampleToken(logits: ArrayLike<number>, history: ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  const d = samplingDistribution(logits, history, p);
  return d.ids.length === 1 ? d.ids[0]! : draw(d, rng);
}
