import { describe, expect, it } from 'vitest';
import { causalConv, dtPipeline, gatedRmsNorm, linear, rmsNorm, silu, softplus, splitLast } from './blocks.js';
import { maxAbsDiff, sliceAxis1, tensor } from './tensor.js';

/** Deterministic pseudo-random values in (−1, 1). */
function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

describe('scalar functions', () => {
  it('softplus is log(1+eˣ) up to the threshold 20 and x above it', () => {
    expect(softplus(0)).toBeCloseTo(Math.log(2), 15);
    expect(softplus(-3)).toBeCloseTo(Math.log1p(Math.exp(-3)), 15);
    expect(softplus(20)).toBeCloseTo(Math.log1p(Math.exp(20)), 12);
    expect(softplus(20.5)).toBe(20.5);
    expect(softplus(1000)).toBe(1000);
  });
  it('silu(x) = x·σ(x)', () => {
    expect(silu(0)).toBe(0);
    expect(silu(2)).toBeCloseTo(2 / (1 + Math.exp(-2)), 15);
  });
});

describe('dtPipeline', () => {
  it('adds the per-head bias, applies softplus, then clamps to the limit', () => {
    const raw = tensor(Float64Array.from([-10, 0, 1, 25, -10, 0]), [1, 2, 3]);
    const bias = Float64Array.from([0, 0.5, -1]);
    const free = dtPipeline(raw, bias, [0, Infinity]).data;
    expect(free[0]).toBeCloseTo(softplus(-10), 15);
    expect(free[1]).toBeCloseTo(softplus(0.5), 15);
    expect(free[2]).toBeCloseTo(softplus(0), 15);
    expect(free[3]).toBe(25);
    const clamped = dtPipeline(raw, bias, [0.001, 0.5]).data;
    expect(clamped[0]).toBe(0.001);
    expect(clamped[1]).toBe(0.5);
    expect(clamped[2]).toBe(0.5);
    expect(clamped[4]).toBe(0.001);
    expect(clamped[5]).toBeCloseTo(softplus(-1), 15);
  });
});

describe('rmsNorm and gatedRmsNorm', () => {
  it('rmsNorm scales each row to unit RMS, then by the weight (no 1+w)', () => {
    const y = rmsNorm(tensor(Float64Array.from([3, 4, 0, 0]), [2, 2]), Float64Array.from([1, 2]), 1e-30).data;
    const r = Math.sqrt(12.5);
    expect([...y.subarray(0, 2)].map((v) => +v.toFixed(12))).toEqual([+(3 / r).toFixed(12), +((2 * 4) / r).toFixed(12)]);
    expect([...y.subarray(2)]).toEqual([0, 0]);
  });

  it('normalises each group separately (G=2 differs from G=1)', () => {
    const y = tensor(rand(2 * 8, 1), [2, 8]);
    const z = tensor(rand(2 * 8, 2), [2, 8]);
    const w = Float64Array.from(rand(8, 3), (v) => 1 + 0.2 * v);
    const g2 = gatedRmsNorm(y, z, w, { nGroups: 2, eps: 1e-5 }).data;
    const g1 = gatedRmsNorm(y, z, w, { nGroups: 1, eps: 1e-5 }).data;
    for (let r = 0; r < 2; r++) {
      for (let g = 0; g < 2; g++) {
        const idx = [0, 1, 2, 3].map((i) => r * 8 + g * 4 + i);
        const gated = idx.map((i) => y.data[i]! * silu(z.data[i]!));
        const inv = 1 / Math.sqrt(gated.reduce((a, v) => a + v * v, 0) / 4 + 1e-5);
        idx.forEach((i, k) => expect(g2[i]).toBeCloseTo(gated[k]! * inv * w[g * 4 + k]!, 12));
      }
    }
    expect(maxAbsDiff(tensor(g2, [2, 8]), tensor(g1, [2, 8])).max).toBeGreaterThan(1e-3);
  });

  it('normBeforeGate: RMSNorm(y)·w·silu(z)', () => {
    const y = tensor(rand(4, 4), [1, 4]);
    const z = tensor(rand(4, 5), [1, 4]);
    const w = Float64Array.from([1, 1.1, 0.9, 1.2]);
    const got = gatedRmsNorm(y, z, w, { nGroups: 1, eps: 1e-5, normBeforeGate: true }).data;
    const n = rmsNorm(y, w, 1e-5).data;
    n.forEach((v, i) => expect(got[i]).toBeCloseTo(v * silu(z.data[i]!), 14));
  });

  it('refuses a group count that does not divide the width', () => {
    const y = tensor(new Float64Array(6), [1, 6]);
    expect(() => gatedRmsNorm(y, y, new Float64Array(6), { nGroups: 4, eps: 1e-5 })).toThrow(/nGroups.*width 6.*got 4/);
  });
});

describe('causalConv', () => {
  const [B, L, C, K] = [2, 9, 3, 4];
  const x = tensor(rand(B * L * C, 10), [B, L, C]);
  const w = rand(C * K, 11);
  const bias = rand(C, 12);

  it('is the causal sum over the last K inputs with zeros before t = 0', () => {
    const { y } = causalConv(x, w, K, bias, undefined, 'none');
    for (let i = 0; i < B; i++) {
      for (let t = 0; t < L; t++) {
        for (let c = 0; c < C; c++) {
          let s = bias[c]!;
          for (let k = 0; k < K; k++) {
            const src = t - K + 1 + k;
            if (src >= 0) s += w[c * K + k]! * x.data[(i * L + src) * C + c]!;
          }
          expect(y.data[(i * L + t) * C + c]).toBeCloseTo(s, 13);
        }
      }
    }
  });

  it('returns the last K−1 inputs as state, zero-padded on the left for short inputs', () => {
    const { state } = causalConv(x, w, K, bias);
    expect(state.shape).toEqual([B, C, K - 1]);
    for (let i = 0; i < B; i++) {
      for (let c = 0; c < C; c++) {
        for (let j = 0; j < K - 1; j++) expect(state.data[(i * C + c) * (K - 1) + j]).toBe(x.data[(i * L + L - K + 1 + j) * C + c]);
      }
    }
    const short = causalConv(sliceAxis1(x, 0, 1), w, K, bias).state;
    for (let c = 0; c < C; c++) {
      expect([...short.data.subarray(c * (K - 1), (c + 1) * (K - 1))]).toEqual([0, 0, x.data[c]]);
    }
  });

  it('continues through its state: split at every point equals one pass', () => {
    const whole = causalConv(x, w, K, bias);
    for (const cut of [1, 2, 3, 5, 8]) {
      const a = causalConv(sliceAxis1(x, 0, cut), w, K, bias);
      const b = causalConv(sliceAxis1(x, cut, L), w, K, bias, a.state);
      expect(maxAbsDiff(a.y, sliceAxis1(whole.y, 0, cut)).max).toBe(0);
      expect(maxAbsDiff(b.y, sliceAxis1(whole.y, cut, L)).max).toBeLessThan(1e-15);
      expect(maxAbsDiff(b.state, whole.state).max).toBe(0);
    }
  });

  it('applies SiLU by default', () => {
    const raw = causalConv(x, w, K, bias, undefined, 'none').y.data;
    const act = causalConv(x, w, K, bias).y.data;
    raw.forEach((v, i) => expect(act[i]).toBeCloseTo(silu(v), 15));
  });

  it('refuses a state of the wrong shape', () => {
    expect(() => causalConv(x, w, K, bias, tensor(new Float64Array(B * C * K), [B, C, K]))).toThrow(
      /causalConv\(state\): expected \[2, 3, 3\], got \[2, 3, 4\]/,
    );
  });
});

describe('linear and splitLast', () => {
  it('linear computes x·Wᵀ + b with W in torch (out, in) layout', () => {
    const x = tensor(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const w = Float64Array.from([1, 0, 0, 0, 1, 1]); // rows: out0 = x0, out1 = x1 + x2
    expect([...linear(x, w, 2, Float64Array.from([10, 20])).data]).toEqual([11, 25, 14, 31]);
  });
  it('splitLast cuts the last axis in order', () => {
    const [a, b] = splitLast(tensor(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3]), [1, 2]);
    expect([...a!.data]).toEqual([1, 4]);
    expect([...b!.data]).toEqual([2, 3, 5, 6]);
    expect(b!.shape).toEqual([2, 2]);
  });
});
