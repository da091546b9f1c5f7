/**
 * The mixture of experts block (moe.ts) against a plain TypeScript reading of docs/model.md §1.5/§1.6
 * on random weights — both routers, every step form (all experts masked, the chosen experts
 * gathered), a latent projection and a shared expert — and the tie rule: equal router scores go to
 * the lower expert (group) index, as ONNX TopK specifies.
 */
import { describe, expect, it } from 'vitest';
import { ModelBuilder } from '../graph/builder.js';
import { tensorFromArray } from '../graph/tensor.js';
import type { MoeConfig } from '../package/layers.js';
import { maxDiff, rand, randArray, runIR } from '../../test/helpers/ort.js';
import { Ctx } from './blocks.js';
import { makeConfig } from './config.js';
import { moe, type MoeWeights } from './moe.js';

const D = 6;
const BASE: MoeConfig = {
  nExperts: 4,
  topK: 2,
  hidden: 3,
  expert: 'relu2',
  router: 'sigmoid_grouped',
  nGroup: 2,
  topkGroup: 1,
  normTopK: true,
  scale: 2.5,
  scoreBias: true,
  latent: 0,
};

interface Dense {
  router: Float32Array; // [E,D]
  bias: Float32Array; // [E]
  up: Float32Array[]; // E × [R,Din]
  down: Float32Array[]; // E × [Din,F]
}

const silu = (v: number): number => v / (1 + Math.exp(-v));
const matvec = (W: Float32Array, x: ArrayLike<number>, rows: number): number[] =>
  Array.from({ length: rows }, (_, r) => Array.from(x).reduce((s, v, c) => s + W[r * x.length + c]! * v, 0));

/** Indices of the k largest, lower index first on ties. */
function topk(v: readonly number[], k: number): number[] {
  return v
    .map((x, i) => [x, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/** The routing weights [E] of one token (layers.ts MoeConfig doc). */
function routeRef(m: MoeConfig, logits: number[], bias: Float32Array): number[] {
  const E = m.nExperts;
  const w = new Array<number>(E).fill(0);
  if (m.router === 'softmax_topk') {
    const top = topk(logits, m.topK);
    const mx = Math.max(...top.map((i) => logits[i]!));
    const z = top.reduce((s, i) => s + Math.exp(logits[i]! - mx), 0);
    for (const i of top) w[i] = Math.exp(logits[i]! - mx) / z;
    return w;
  }
  const s = logits.map((l) => 1 / (1 + Math.exp(-l)));
  let choice = s.map((v, i) => v + bias[i]!);
  const per = E / m.nGroup;
  const groupScore = Array.from({ length: m.nGroup }, (_, gi) => {
    const g = choice.slice(gi * per, (gi + 1) * per).sort((a, b) => b - a);
    return g[0]! + g[1]!;
  });
  const groups = new Set(topk(groupScore, m.topkGroup));
  choice = choice.map((v, i) => (groups.has(Math.floor(i / per)) ? v : -Infinity));
  const top = topk(choice, m.topK);
  const sum = top.reduce((t, i) => t + s[i]!, 0) + 1e-20;
  for (const i of top) w[i] = (m.normTopK ? s[i]! / sum : s[i]!) * m.scale;
  return w;
}

function moeRef(m: MoeConfig, p: Dense, x: Float32Array): number[] {
  const w = routeRef(m, matvec(p.router, x, m.nExperts), p.bias);
  const y = new Array<number>(D).fill(0);
  const R = m.expert === 'gate_up' ? 2 * m.hidden : m.hidden;
  w.forEach((we, e) => {
    if (we === 0) return;
    const u = matvec(p.up[e]!, x, R);
    const h = m.expert === 'relu2' ? u.map((v) => Math.max(v, 0) ** 2) : u.slice(0, m.hidden).map((g, f) => silu(g) * u[m.hidden + f]!);
    matvec(p.down[e]!, h, D).forEach((v, d) => {
      y[d] = y[d]! + we * v;
    });
  });
  return y;
}

/** The block on x [B,D] in ONNX (step form `step`), run by ORT. */
async function moeOnnx(m: MoeConfig, p: Dense, x: Float32Array, B: number, step: 'gather' | 'all'): Promise<Float32Array> {
  const mb = new ModelBuilder({ name: 'moe' });
  const g = mb.graph;
  const E = m.nExperts;
  const F = m.hidden;
  const R = m.expert === 'gate_up' ? 2 * F : F;
  const up = new Float32Array(E * R * D);
  const down = new Float32Array(E * F * D); // [E·F,D]: each expert's down transposed
  for (let e = 0; e < E; e++) {
    up.set(p.up[e]!, e * R * D);
    for (let d = 0; d < D; d++) for (let f = 0; f < F; f++) down[(e * F + f) * D + d] = p.down[e]![d * F + f]!;
  }
  const w: MoeWeights = {
    router: g.initializer('router', tensorFromArray('float32', [E, D], p.router)),
    scoreBias: m.scoreBias ? g.initializer('bias', tensorFromArray('float32', [E], p.bias)) : undefined,
    up: { kind: 'dense', w: g.initializer('up', tensorFromArray('float32', [E * R, D], up)) },
    down: { kind: 'dense', w: g.initializer('down', tensorFromArray('float32', [E * F, D], down)) },
    downRows: true,
  };
  const ctx = new Ctx(g, makeConfig({ dModel: 32, nLayer: 1, vocabSize: 8, headDim: 16, dState: 8 }), undefined, { moeStep: step });
  g.output(moe(ctx, m, w, g.input('x', 'float32', ['batch', D])), 'y');
  const out = await runIR(mb.finish(), { x: { data: x, dims: [B, D] } });
  return out.y!.data;
}

function weights(m: MoeConfig, seed: number): Dense {
  const r = rand(seed);
  const R = m.expert === 'gate_up' ? 2 * m.hidden : m.hidden;
  return {
    router: randArray(m.nExperts * D, r),
    bias: randArray(m.nExperts, r, -0.3, 0.3),
    up: Array.from({ length: m.nExperts }, () => randArray(R * D, r)),
    down: Array.from({ length: m.nExperts }, () => randArray(D * m.hidden, r)),
  };
}

describe('mixture of experts block', () => {
  it.each([
    ['sigmoid_grouped, 2 groups, relu2', BASE],
    ['sigmoid_grouped, one group, no normalisation', { ...BASE, nGroup: 1, normTopK: false, scale: 1 }],
    ['softmax_topk, gate_up (Granite)', { ...BASE, router: 'softmax_topk', expert: 'gate_up', nGroup: 1, scoreBias: false, scale: 1 }],
  ] as [string, MoeConfig][])('%s: both step forms equal the plain reading (8 random tokens)', async (_n, m) => {
    const p = weights(m, 3);
    const B = 8;
    const x = randArray(B * D, rand(4), -2, 2);
    const want = Array.from({ length: B }, (_, b) => moeRef(m, p, x.subarray(b * D, (b + 1) * D))).flat();
    for (const step of ['gather', 'all'] as const) {
      const d = maxDiff(await moeOnnx(m, p, x, B, step), want);
      expect(d.max, `${step}: max|Δ| at ${d.at}`).toBeLessThan(1e-5);
    }
  });

  it('ties go to the lower expert index (equal router rows) and to the lower group', async () => {
    const m: MoeConfig = { ...BASE, topK: 1, nGroup: 1, topkGroup: 1 };
    const p = weights(m, 5);
    p.router.copyWithin(2 * D, 1 * D, 2 * D); // experts 1 and 2 score alike for every token
    p.bias.fill(0);
    p.router.fill(0, 0, D); // expert 0 scores sigmoid(0) = 0.5 …
    p.router.fill(0, 3 * D, 4 * D); // … and so does expert 3: ties everywhere
    const x = randArray(4 * D, rand(6), -2, 2);
    const want = Array.from({ length: 4 }, (_, b) => moeRef(m, p, x.subarray(b * D, (b + 1) * D))).flat();
    for (const step of ['gather', 'all'] as const) expect(maxDiff(await moeOnnx(m, p, x, 4, step), want).max, step).toBeLessThan(1e-5);
    const grouped: MoeConfig = { ...BASE, topK: 1, nGroup: 2, topkGroup: 1 };
    const q = weights(grouped, 7);
    q.router.copyWithin(2 * D, 0, 2 * D); // group 1 = group 0: their scores tie
    q.bias.fill(0);
    const wantG = Array.from({ length: 4 }, (_, b) => moeRef(grouped, q, x.subarray(b * D, (b + 1) * D))).flat();
    expect(maxDiff(await moeOnnx(grouped, q, x, 4, 'all'), wantG).max).toBeLessThan(1e-5);
  });
});
