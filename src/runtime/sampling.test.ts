import { describe, expect, it } from 'vitest';
import { draw, mulberry32, sampleToken, samplingDistribution, type SamplingParams } from './sampling.js';

const P = (over: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 1,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  realVocabSize: 1e9,
  ...over,
});

/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs.map(Math.log));

const sorted = (a: Int32Array): number[] => [...a].sort((x, y) => x - y);

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('greedy', () => {
  it('picks the argmax, lowest id on ties', () => {
    expect(sampleToken([0.1, 3, -2, 3], [], P({ temperature: 0 }), mulberry32(1))).toBe(1);
    expect(samplingDistribution([5, 1, 2], [], P({ temperature: 0, topK: 2, topP: 0.1 })).ids).toEqual(Int32Array.of(0));
  });

  it('never picks padded vocab rows (ids ≥ realVocabSize)', () => {
    const logits = [0, 1, 2, 100, 200];
    expect(sampleToken(logits, [], P({ temperature: 0, realVocabSize: 3 }), mulberry32(1))).toBe(2);
  });

  it('skips suppressed ids and NaN logits', () => {
    expect(sampleToken([1, 9, NaN, 5], [], P({ temperature: 0, suppress: [1] }), mulberry32(1))).toBe(3);
  });

  it('throws when every token is masked', () => {
    expect(() => samplingDistribution([1, 2], [], P({ temperature: 0, suppress: [0, 1] }))).toThrow(RangeError);
    expect(() => samplingDistribution([1, 2], [], P({ suppress: [0, 1] }))).toThrow(/every token is masked/);
  });
});

describe('temperature', () => {
  it('gives softmax(logits / T)', () => {
    const logits = [1, 2, 0.5, -1];
    for (const T of [0.5, 1, 2]) {
      const d = samplingDistribution(logits, [], P({ temperature: T }));
      expect([...d.ids]).toEqual([0, 1, 2, 3]);
      const want = softmax(logits.map((l) => l / T));
      d.probs.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 12));
    }
  });

  it('draws with the expected frequencies', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const rng = mulberry32(42);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logitsOf(probs), [], P(), rng)]!++;
    counts.forEach((c, i) => expect(Math.abs(c / n - probs[i]!)).toBeLessThan(0.015));
  });
});

describe('top-k', () => {
  it('keeps exactly the k most likely tokens, renormalised', () => {
    const logits = [0.3, 2.0, -1, 1.5, 0.9, 1.5];
    const d = samplingDistribution(logits, [], P({ topK: 3 }));
    expect([...d.ids]).toEqual([1, 3, 5]); // ties: lower id first
    const want = softmax([2.0, 1.5, 1.5]);
    d.probs.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 12));
  });

  it('matches a full sort on random logits', () => {
    const rng = mulberry32(7);
    for (let trial = 0; trial < 20; trial++) {
      const logits = Array.from({ length: 500 }, () => rng() * 10);
      const k = 1 + Math.floor(rng() * 50);
      const want = logits
        .map((l, i) => [l, i] as const)
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, k)
        .map((x) => x[1]);
      expect([...samplingDistribution(logits, [], P({ topK: k })).ids]).toEqual(want);
    }
  });

  it('top-k ≥ vocab keeps everything; padded rows still excluded', () => {
    const d = samplingDistribution([1, 2, 3, 50], [], P({ topK: 10, realVocabSize: 3 }));
    expect(sorted(d.ids)).toEqual([0, 1, 2]);
  });
});

describe('top-p', () => {
  const probs = [0.15, 0.5, 0.05, 0.3];
  it.each([
    [0.5, [1]],
    [0.79, [1, 3]],
    [0.8, [1, 3]],
    [0.81, [0, 1, 3]],
    [0.96, [0, 1, 2, 3]],
    [1, [0, 1, 2, 3]],
  ])('top-p %f keeps the smallest nucleus %j', (topP, want) => {
    const d = samplingDistribution(logitsOf(probs), [], P({ topP }));
    expect(sorted(d.ids)).toEqual(want);
    const mass = want.reduce((a, i) => a + probs[i]!, 0);
    d.ids.forEach((id, i) => expect(d.probs[i]).toBeCloseTo(probs[id]! / mass, 6));
  });

  it('matches a brute-force nucleus on random distributions (the pruning is exact)', () => {
    const rng = mulberry32(11);
    for (let trial = 0; trial < 30; trial++) {
      const logits = Array.from({ length: 300 }, () => (rng() - 0.5) * 12);
      const topP = 0.05 + rng() * 0.9;
      const p = softmax(logits);
      const order = p.map((q, i) => [q, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const want: number[] = [];
      let cum = 0;
      for (const [q, i] of order) {
        want.push(i);
        cum += q;
        if (cum >= topP) break;
      }
      expect([...samplingDistribution(logits, [], P({ topP })).ids]).toEqual(want);
    }
  });

  it('applies after top-k (HF order)', () => {
    // top-k 2 keeps {1: 0.5, 3: 0.3} → renormalised 0.625 / 0.375; top-p 0.6 keeps only id 1
    expect([...samplingDistribution(logitsOf(probs), [], P({ topK: 2, topP: 0.6 })).ids]).toEqual([1]);
  });
});

describe('repetition penalty', () => {
  it('divides positive and multiplies negative logits of seen tokens', () => {
    const logits = [2, -1, 1.9, 0];
    const d = samplingDistribution(logits, [0, 1, 0], P({ repetitionPenalty: 2 }));
    const want = softmax([1, -2, 1.9, 0]);
    d.probs.forEach((p, i) => expect(p).toBeCloseTo(want[d.ids[i]!]!, 12));
  });

  it('changes the greedy choice', () => {
    expect(sampleToken([2, -1, 1.9], [0], P({ temperature: 0 }), mulberry32(1))).toBe(0);
    expect(sampleToken([2, -1, 1.9], [0], P({ temperature: 0, repetitionPenalty: 1.2 }), mulberry32(1))).toBe(2);
  });
});

describe('seeded RNG', () => {
  it('same seed gives the same numbers, different seeds differ', () => {
    const a = mulberry32(123);
    const b = mulberry32(123);
    const c = mulberry32(124);
    const xs = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('seeds above 2^32 still differ', () => {
    expect(mulberry32(2 ** 33 + 5)()).not.toBe(mulberry32(5)());
  });

  it('same seed → same sampled tokens', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number): number[] => {
      const rng = mulberry32(seed);
      return Array.from({ length: 40 }, () => sampleToken(logits, [], P({ temperature: 1.3, topK: 20, topP: 0.9 }), rng));
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it('rejects a non-integer seed', () => {
    expect(() => mulberry32(1.5)).toThrow(RangeError);
  });

  it('draw returns the last id when rounding leaves the sum just below 1', () => {
    expect(draw({ ids: Int32Array.of(4, 7), probs: Float64Array.of(0.5, 0.4999999) }, () => 0.99999999)).toBe(7);
  });
});
