/**
 * Continuous batching and the prefix-state cache, through real HTTP: concurrent requests give the
 * tokens each gives alone, and a prompt served from a cached prefix gives the tokens of a cold run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mamba2Model } from '../runtime/model.js';
import type { RunningServer } from './server.js';
import { exportTinyModels, metric, postJson, serve, loadModel, type TinyModels } from '../../test/helpers/server.js';

let models: TinyModels;
let model: Mamba2Model;
let cold: RunningServer; // no prefix cache
let cached: RunningServer;
let chunkedOnly: RunningServer; // every prompt token through prefill calls (no stepped tails)

beforeAll(async () => {
  models = await exportTinyModels();
  model = await loadModel(models.plain);
  cold = await serve(model, { cacheBytes: 0 });
  cached = await serve(model, { cacheBytes: 64 * 2 ** 20 });
  chunkedOnly = await serve(model, { cacheBytes: 0, stepPrefillMax: 0, prefillWindow: 64 }); // rows of equal length share prefill calls
  await Promise.all([cold.ready, cached.ready, chunkedOnly.ready]);
});

afterAll(async () => {
  await Promise.all([cold?.shutdown(), cached?.shutdown(), chunkedOnly?.shutdown()]);
  await model?.release();
  models?.cleanup();
});

interface Body {
  prompt: number[];
  max_tokens: number;
  temperature?: number;
  seed?: number;
  top_p?: number;
}

async function complete(s: RunningServer, body: Body): Promise<{ ids: number[]; cached: number }> {
  const r = await postJson(`${s.url}/v1/completions`, { model: 'tiny', temperature: 0, ...body });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const choice = (r.json.choices as { token_ids: number[] }[])[0]!;
  const usage = r.json.usage as { prompt_tokens_details: { cached_tokens: number } };
  return { ids: choice.token_ids, cached: usage.prompt_tokens_details.cached_tokens };
}

/** Prompt k: length 3…31, each length twice (windows of 8 are crossed at different points; equal lengths can share a prefill call). */
const prompt = (k: number): number[] => Array.from({ length: 3 + (k % 8) * 4 }, (_, i) => (i * 31 + k * 17 + 1) % 256);

describe('continuous batching', () => {
  it.each([
    ['prompt tails of ≤ 8 tokens fed through the decode batch', () => cold],
    ['every prompt token through prefill calls', () => chunkedOnly],
  ])('16 concurrent greedy requests give the tokens each gives alone (%s)', async (_what, server) => {
    const s = server();
    const bodies: Body[] = Array.from({ length: 16 }, (_, k) => ({ prompt: prompt(k), max_tokens: 8 + ((k * 5) % 17) }));
    const alone: number[][] = [];
    for (const b of bodies) alone.push((await complete(s, b)).ids);
    const stepsAlone = await metric(s.url, 'mamba2_decode_steps_total');
    const together = await Promise.all(bodies.map((b) => complete(s, b)));
    together.forEach((t, k) => expect(t.ids, `request ${k}`).toEqual(alone[k]));
    // They really shared decode steps: far fewer steps than when run one by one.
    const stepsTogether = (await metric(s.url, 'mamba2_decode_steps_total')) - stepsAlone;
    expect(stepsTogether).toBeLessThan(stepsAlone / 4);
    if (s === chunkedOnly) expect(await metric(s.url, 'mamba2_prefill_calls_total')).toBeLessThan(2 * 16); // some calls were shared
  });

  it('seeded sampling is per request: the same tokens alone and among others', async () => {
    const body: Body = { prompt: prompt(3), max_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 1234 };
    const alone = await complete(cold, body);
    const others = Array.from({ length: 6 }, (_, k) => complete(cold, { prompt: prompt(k + 20), max_tokens: 10, temperature: 1, seed: k }));
    const [again] = await Promise.all([complete(cold, body), ...others]);
    expect(again!.ids).toEqual(alone.ids);
  });
});

describe('prefix-state cache', () => {
  it('a repeated prompt is a full hit and gives the cold tokens', async () => {
    const p = prompt(5);
    const ref = await complete(cold, { prompt: p, max_tokens: 10 });
    const first = await complete(cached, { prompt: p, max_tokens: 10 });
    const second = await complete(cached, { prompt: p, max_tokens: 10 });
    expect(first).toEqual({ ids: ref.ids, cached: 0 });
    expect(second).toEqual({ ids: ref.ids, cached: p.length });
  });

  it('a prompt sharing a prefill-window boundary continues from it, with the cold tokens', async () => {
    const base = Array.from({ length: 21 }, (_, i) => (i * 13 + 5) % 256);
    await complete(cached, { prompt: base, max_tokens: 4 });
    const other = [...base.slice(0, 19), 77, 78, 79, 80]; // shares 19 tokens: the boundary at 16 is cached
    const ref = await complete(cold, { prompt: other, max_tokens: 12 });
    const hit = await complete(cached, { prompt: other, max_tokens: 12 });
    expect(hit).toEqual({ ids: ref.ids, cached: 16 });
  });

  it('a follow-up prompt (prompt + answer + more) continues from the end of the generation', async () => {
    const p = Array.from({ length: 10 }, (_, i) => (i * 7 + 3) % 256);
    const a = await complete(cached, { prompt: p, max_tokens: 6 });
    const follow = [...p, ...a.ids, 40, 41, 42];
    const ref = await complete(cold, { prompt: follow, max_tokens: 10 });
    const hit = await complete(cached, { prompt: follow, max_tokens: 10 });
    expect(hit.cached).toBe(p.length + a.ids.length - 1);
    expect(hit.ids).toEqual(ref.ids);
  });

  it('metrics count hits, misses and bytes; the budget bounds the bytes', async () => {
    const hits = await metric(cached.url, 'mamba2_prefix_cache_hits_total');
    const misses = await metric(cached.url, 'mamba2_prefix_cache_misses_total');
    const bytes = await metric(cached.url, 'mamba2_prefix_cache_bytes');
    expect(hits).toBeGreaterThanOrEqual(3);
    expect(misses).toBeGreaterThanOrEqual(3);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(64 * 2 ** 20);
  });
});
