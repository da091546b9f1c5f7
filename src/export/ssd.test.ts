/**
 * The SSD graph (chunked dual form and single step) and the conv block against the plain
 * sequential TypeScript reference, on random inputs: L < K, L not a multiple of Q, G > 1,
 * non-zero initial state, batch 2 (docs/model.md §6.1, §6.7, §6.13).
 */
import { describe, expect, it } from 'vitest';
import { ModelBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import { aFromALog, causalConv as refConv } from '../reference/blocks.js';
import { ssdSequential } from '../reference/ssd.js';
import { maxDiff, rand, randArray, runIR } from '../../test/helpers/ort.js';
import { B, Ctx, L } from './blocks.js';
import { makeConfig } from './config.js';
import { causalConv, causalConvStep } from './conv.js';
import { ssdChunked, ssdStep } from './ssd.js';

interface Case {
  batch: number;
  len: number;
  heads: number;
  groups: number;
  P: number;
  N: number;
  Q: number;
  h0: boolean;
}

function config(k: Case) {
  return makeConfig({ dModel: (k.heads * k.P) / 2, nLayer: 1, vocabSize: 8, headDim: k.P, dState: k.N, nGroups: k.groups, chunkSize: k.Q });
}

async function checkChunked(
  k: Case,
  seed: number,
  segsum: 'stable' | 'diff' = 'stable',
  decay: [number, number] = [0.01, 0.5],
  tol = 2e-5,
): Promise<number> {
  const c = config(k);
  const m = new ModelBuilder({ name: 'ssd' });
  const g = m.graph;
  const x = g.input('x', 'float32', [B, L, k.heads, k.P]);
  const dt = g.input('dt', 'float32', [B, L, k.heads]);
  const A = g.input('A', 'float32', [k.heads]);
  const Bm = g.input('Bm', 'float32', [B, L, k.groups, k.N]);
  const Cm = g.input('Cm', 'float32', [B, L, k.groups, k.N]);
  const h0 = g.input('h0', 'float32', [B, k.heads, k.P, k.N]);
  const out = ssdChunked(new Ctx(g, c, undefined, { segsum }), { x, dt, A, Bm, Cm, h0 });
  g.output(out.y, 'y');
  g.output(out.hT, 'hT');

  const r = rand(seed);
  const [b, l, h, gr] = [k.batch, k.len, k.heads, k.groups];
  const xs = randArray(b * l * h * k.P, r);
  const dts = randArray(b * l * h, r, decay[0], decay[1]);
  const As = Float32Array.from(aFromALog(randArray(h, r, 0, decay[1] > 0.5 ? Math.log(16) : 2)));
  const Bs = randArray(b * l * gr * k.N, r);
  const Cs = randArray(b * l * gr * k.N, r);
  const hs = k.h0 ? randArray(b * h * k.P * k.N, r) : new Float32Array(b * h * k.P * k.N);
  const got = await runIR(m.finish(), {
    x: { data: xs, dims: [b, l, h, k.P] },
    dt: { data: dts, dims: [b, l, h] },
    A: { data: As, dims: [h] },
    Bm: { data: Bs, dims: [b, l, gr, k.N] },
    Cm: { data: Cs, dims: [b, l, gr, k.N] },
    h0: { data: hs, dims: [b, h, k.P, k.N] },
  });
  const want = ssdSequential(
    { data: xs, shape: [b, l, h, k.P] },
    { data: dts, shape: [b, l, h] },
    As,
    { data: Bs, shape: [b, l, gr, k.N] },
    { data: Cs, shape: [b, l, gr, k.N] },
    { data: hs, shape: [b, h, k.P, k.N] },
  );
  expect(got.y!.dims).toEqual([b, l, h, k.P]);
  expect(got.hT!.dims).toEqual([b, h, k.P, k.N]);
  const dy = maxDiff(got.y!.data, want.y.data);
  const dh = maxDiff(got.hT!.data, want.hT.data);
  expect(dy.max, `y max|Δ| at ${dy.at}`).toBeLessThan(tol);
  expect(dh.max, `hT max|Δ| at ${dh.at}`).toBeLessThan(tol);
  return Math.max(dy.max, dh.max);
}

describe('ssdChunked = sequential recurrence', () => {
  const cases: [string, Case][] = [
    ['L not a multiple of Q, G=2, h0, batch 2', { batch: 2, len: 37, heads: 4, groups: 2, P: 8, N: 6, Q: 8, h0: true }],
    ['L < Q (one padded chunk)', { batch: 1, len: 3, heads: 2, groups: 1, P: 4, N: 5, Q: 16, h0: true }],
    ['L = Q exactly, zero state', { batch: 2, len: 16, heads: 4, groups: 4, P: 4, N: 8, Q: 16, h0: false }],
    ['L = 1 through the chunked path', { batch: 2, len: 1, heads: 4, groups: 2, P: 4, N: 4, Q: 8, h0: true }],
    ['many chunks (C = 9), G = H', { batch: 1, len: 70, heads: 3, groups: 3, P: 4, N: 4, Q: 8, h0: true }],
  ];
  cases.forEach(([name, k], i) => it(name, async () => void (await checkChunked(k, 100 + i))));
  cases.forEach(([name, k], i) => it(`segsum 'diff': ${name}`, async () => void (await checkChunked(k, 100 + i, 'diff'))));
});

describe('segsum precision under large decays (Q = 64, dt·A down to −16 per token: Acs ≈ −500 per chunk)', () => {
  const k: Case = { batch: 1, len: 130, heads: 4, groups: 2, P: 8, N: 8, Q: 64, h0: true };
  it("the stable form stays exact to rounding; 'diff' stays within 5e-5 (its error grows as |Acs|·2⁻²³ in the exponent)", async () => {
    const stable = await checkChunked(k, 9, 'stable', [0.01, 1], 2e-5);
    const diff = await checkChunked(k, 9, 'diff', [0.01, 1], 5e-5);
    expect(stable).toBeLessThanOrEqual(diff);
    console.log(`segsum max abs error under large decays: stable ${stable.toExponential(2)}, diff ${diff.toExponential(2)}`);
  });
});

describe('ssdStep = one step of the recurrence', () => {
  it('G=2, batch 2, non-zero state', async () => {
    const [b, h, gr, P, N] = [2, 4, 2, 8, 6];
    const c = makeConfig({ dModel: (h * P) / 2, nLayer: 1, vocabSize: 8, headDim: P, dState: N, nGroups: gr, chunkSize: 8 });
    const m = new ModelBuilder({ name: 'step' });
    const g = m.graph;
    const ins = {
      x: g.input('x', 'float32', [B, h, P]),
      dt: g.input('dt', 'float32', [B, h]),
      A: g.input('A', 'float32', [h]),
      Bm: g.input('Bm', 'float32', [B, gr, N]),
      Cm: g.input('Cm', 'float32', [B, gr, N]),
      h0: g.input('h0', 'float32', [B, h, P, N]),
    };
    const col = (v: typeof ins.x, shape: (number | string)[]) => op.Reshape(g, v, shape);
    const out = ssdStep(new Ctx(g, c), { ...ins, x: col(ins.x, [B, h, P, 1]), dt: col(ins.dt, [B, h, 1, 1]), A: col(ins.A, [h, 1, 1]) });
    g.output(col(out.y, [B, h, P]), 'y');
    g.output(out.hT, 'hT');
    const r = rand(7);
    const xs = randArray(b * h * P, r);
    const dts = randArray(b * h, r, 0.01, 0.5);
    const As = Float32Array.from(aFromALog(randArray(h, r, 0, 2)));
    const Bs = randArray(b * gr * N, r);
    const Cs = randArray(b * gr * N, r);
    const hs = randArray(b * h * P * N, r);
    const got = await runIR(m.finish(), {
      x: { data: xs, dims: [b, h, P] },
      dt: { data: dts, dims: [b, h] },
      A: { data: As, dims: [h] },
      Bm: { data: Bs, dims: [b, gr, N] },
      Cm: { data: Cs, dims: [b, gr, N] },
      h0: { data: hs, dims: [b, h, P, N] },
    });
    const want = ssdSequential(
      { data: xs, shape: [b, 1, h, P] },
      { data: dts, shape: [b, 1, h] },
      As,
      { data: Bs, shape: [b, 1, gr, N] },
      { data: Cs, shape: [b, 1, gr, N] },
      { data: hs, shape: [b, h, P, N] },
    );
    expect(maxDiff(got.y!.data, want.y.data).max).toBeLessThan(1e-5);
    expect(maxDiff(got.hT!.data, want.hT.data).max).toBeLessThan(1e-5);
  });
});

describe('causal conv with state', () => {
  const K = 4;
  const C = 6;
  async function run(len: number, step: boolean, seed: number, conv: 'conv' | 'shifted' = 'conv') {
    const c = makeConfig({ dModel: 8, nLayer: 1, vocabSize: 8, headDim: 4, dState: 1, nGroups: 1, dConv: K });
    // convDim of this config: dSsm + 2·G·N = 16 + 2 = 18; the test uses its own channel count
    const cfg = { ...c, convDim: C };
    const m = new ModelBuilder({ name: 'conv' });
    const g = m.graph;
    const x = g.input('x', 'float32', step ? [B, C] : [B, L, C]);
    const past = g.input('past', 'float32', [B, C, K - 1]);
    const w = g.input('w', 'float32', [C, 1, K]);
    const bias = g.input('b', 'float32', [C]);
    const ctx = new Ctx(g, cfg, undefined, { conv });
    const out = step ? causalConvStep(ctx, x, past, w, bias) : causalConv(ctx, x, past, w, bias);
    g.output(out.y, 'y');
    g.output(out.state, 'state');
    const r = rand(seed);
    const b = 2;
    const xs = randArray(b * len * C, r);
    const ps = randArray(b * C * (K - 1), r);
    const ws = randArray(C * K, r);
    const bs = randArray(C, r);
    const got = await runIR(m.finish(), {
      x: { data: xs, dims: step ? [b, C] : [b, len, C] },
      past: { data: ps, dims: [b, C, K - 1] },
      w: { data: ws, dims: [C, 1, K] },
      b: { data: bs, dims: [C] },
    });
    const want = refConv({ data: xs, shape: [b, len, C] }, ws, K, bs, { data: ps, shape: [b, C, K - 1] });
    expect(maxDiff(got.y!.data, want.y.data).max).toBeLessThan(1e-5);
    expect(maxDiff(got.state!.data, want.state.data).max).toBe(0);
  }
  it('L < K continues the state (state keeps old columns)', () => run(2, false, 1));
  it('L > K', () => run(9, false, 2));
  it('one step', () => run(1, true, 3));
  it("'shifted' products: L < K continues the state", () => run(2, false, 4, 'shifted'));
  it("'shifted' products: L > K", () => run(9, false, 5, 'shifted'));
});
