import { describe, expect, it } from 'vitest';
import { ssdSequential } from './ssd.js';
import { maxAbsDiff, sliceAxis1, tensor, type Tensor } from './tensor.js';

function rand(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  });
}

const [B, L, H, P, G, N] = [2, 13, 4, 3, 2, 5];
const x = tensor(rand(B * L * H * P, 1), [B, L, H, P]);
const dt = tensor(rand(B * L * H, 2, 0.01, 0.5), [B, L, H]);
const A = Float64Array.from(rand(H, 3, 1, 8), (v) => -v);
const Bm = tensor(rand(B * L * G * N, 4), [B, L, G, N]);
const Cm = tensor(rand(B * L * G * N, 5), [B, L, G, N]);
const h0 = tensor(rand(B * H * P * N, 6), [B, H, P, N]);

/**
 * The SSD's "attention" (quadratic, dual) form, written independently of the recurrence:
 * y_t = Σ_{s≤t} (C_t·B_s)·exp(Σ_{s<k≤t} dt_k·A)·dt_s·x_s + C_t·exp(Σ_{k≤t} dt_k·A)·h0.
 */
function quadratic(h0t?: Tensor): { y: Float64Array; hT: Float64Array } {
  const y = new Float64Array(B * L * H * P);
  const hT = new Float64Array(B * H * P * N);
  const gOf = (h: number): number => Math.floor(h / (H / G));
  const cum = (i: number, h: number, from: number, to: number): number => {
    let s = 0;
    for (let k = from; k <= to; k++) s += dt.data[(i * L + k) * H + h]! * A[h]!;
    return s;
  };
  const bc = (arr: Tensor, i: number, t: number, g: number, n: number): number => arr.data[((i * L + t) * G + g) * N + n]!;
  for (let i = 0; i < B; i++) {
    for (let h = 0; h < H; h++) {
      const g = gOf(h);
      for (let p = 0; p < P; p++) {
        for (let t = 0; t < L; t++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) {
            let cb = 0;
            for (let n = 0; n < N; n++) cb += bc(Cm, i, t, g, n) * bc(Bm, i, s, g, n);
            acc += cb * Math.exp(cum(i, h, s + 1, t)) * dt.data[(i * L + s) * H + h]! * x.data[((i * L + s) * H + h) * P + p]!;
          }
          if (h0t) {
            const decay = Math.exp(cum(i, h, 0, t));
            for (let n = 0; n < N; n++) acc += bc(Cm, i, t, g, n) * decay * h0t.data[((i * H + h) * P + p) * N + n]!;
          }
          y[((i * L + t) * H + h) * P + p] = acc;
        }
        for (let n = 0; n < N; n++) {
          let s0 = h0t ? Math.exp(cum(i, h, 0, L - 1)) * h0t.data[((i * H + h) * P + p) * N + n]! : 0;
          for (let s = 0; s < L; s++) {
            s0 +=
              Math.exp(cum(i, h, s + 1, L - 1)) *
              dt.data[(i * L + s) * H + h]! *
              x.data[((i * L + s) * H + h) * P + p]! *
              bc(Bm, i, s, g, n);
          }
          hT[((i * H + h) * P + p) * N + n] = s0;
        }
      }
    }
  }
  return { y, hT };
}

describe('ssdSequential', () => {
  it('equals the quadratic (dual) form, with and without an initial state', () => {
    for (const init of [undefined, h0]) {
      const got = ssdSequential(x, dt, A, Bm, Cm, init);
      const want = quadratic(init);
      expect(maxAbsDiff(got.y, tensor(want.y, [B, L, H, P])).max).toBeLessThan(1e-12);
      expect(maxAbsDiff(got.hT, tensor(want.hT, [B, H, P, N])).max).toBeLessThan(1e-12);
    }
  });

  it('continues through hT: any split equals one pass', () => {
    const whole = ssdSequential(x, dt, A, Bm, Cm, h0);
    for (const cut of [1, 5, 8, 12]) {
      const a = ssdSequential(sliceAxis1(x, 0, cut), sliceAxis1(dt, 0, cut), A, sliceAxis1(Bm, 0, cut), sliceAxis1(Cm, 0, cut), h0);
      const b = ssdSequential(sliceAxis1(x, cut, L), sliceAxis1(dt, cut, L), A, sliceAxis1(Bm, cut, L), sliceAxis1(Cm, cut, L), a.hT);
      expect(maxAbsDiff(b.y, sliceAxis1(whole.y, cut, L)).max).toBeLessThan(1e-14);
      expect(maxAbsDiff(b.hT, whole.hT).max).toBeLessThan(1e-14);
    }
  });

  it('maps heads to groups contiguously (h // (H/G)), not cyclically', () => {
    const bOnly0 = tensor(
      Float64Array.from(Bm.data, (v, i) => (Math.floor(i / N) % G === 0 ? v : 0)),
      [B, L, G, N],
    );
    const y = ssdSequential(x, dt, A, bOnly0, Cm).y.data;
    const headNorm = (h: number): number => {
      let s = 0;
      for (let r = 0; r < B * L; r++) for (let p = 0; p < P; p++) s += Math.abs(y[(r * H + h) * P + p]!);
      return s;
    };
    expect(headNorm(0)).toBeGreaterThan(0);
    expect(headNorm(1)).toBeGreaterThan(0);
    expect(headNorm(2)).toBe(0);
    expect(headNorm(3)).toBe(0);
  });

  it('names the argument and both shapes on a mismatch', () => {
    expect(() => ssdSequential(x, tensor(new Float64Array(B * L), [B, L, 1]), A, Bm, Cm)).toThrow(
      /ssdSequential\(dt\): expected \[B, L, H\] = \[2, 13, 4\], got \[2, 13, 1\]/,
    );
    expect(() => ssdSequential(x, dt, A, Bm, Cm, tensor(new Float64Array(4), [1, 1, 2, 2]))).toThrow(/ssdSequential\(h0\)/);
  });
});
