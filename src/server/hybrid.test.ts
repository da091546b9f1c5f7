/**
 * Serving a hybrid (Mamba-2 + attention): KV caches of different lengths do not stack, so the
 * engine runs hybrid rows unbatched (solo-batch.ts). Concurrent requests still give the tokens
 * each gives alone, and a prompt served from a cached prefix (KV caches included) the tokens of a
 * cold run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../export/index.js';
import type { Mamba2Model } from '../runtime/model.js';
import type { RunningServer } from './server.js';
import { loadModel, postJson, serve } from '../../test/helpers/server.js';

const root = mkdtempSync(join(tmpdir(), 'm2-serve-hybrid-'));
let model: Mamba2Model;
let cold: RunningServer;
let cached: RunningServer;

beforeAll(async () => {
  const preset = join(root, 'hybrid.json');
  writeFileSync(
    preset,
    JSON.stringify({
      source: 'none (random weights)',
      format: 'mamba_ssm',
      config: {
        d_model: 32,
        n_layer: 3,
        d_intermediate: 64,
        vocab_size: 64,
        ssm_cfg: { layer: 'Mamba2', d_state: 8, headdim: 16, chunk_size: 8 },
        attn_layer_idx: [0, 2],
        attn_cfg: { causal: true, num_heads: 4, num_heads_kv: 1, rotary_emb_dim: 8, d_conv: 4 },
      },
    }),
  );
  await exportModel({ preset, randomWeights: true, seed: 5 }, { outDir: join(root, 'model') });
  model = await loadModel(join(root, 'model'));
  cold = await serve(model, { cacheBytes: 0 });
  cached = await serve(model, { cacheBytes: 16 * 2 ** 20 });
  await Promise.all([cold.ready, cached.ready]);
});

afterAll(async () => {
  await Promise.all([cold?.shutdown(), cached?.shutdown()]);
  await model?.release();
  rmSync(root, { recursive: true, force: true });
});

async function complete(s: RunningServer, prompt: number[], maxTokens: number): Promise<{ ids: number[]; cached: number }> {
  const r = await postJson(`${s.url}/v1/completions`, { model: 'tiny', prompt, max_tokens: maxTokens, temperature: 0 });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const usage = r.json.usage as { prompt_tokens_details: { cached_tokens: number } };
  return { ids: (r.json.choices as { token_ids: number[] }[])[0]!.token_ids, cached: usage.prompt_tokens_details.cached_tokens };
}

const prompt = (k: number): number[] => Array.from({ length: 2 + ((k * 7) % 23) }, (_, i) => (i * 29 + k * 11 + 3) % 64);

describe('serving a hybrid (rows run unbatched)', () => {
  it('8 concurrent greedy requests of different lengths give the tokens each gives alone', async () => {
    const ks = [...Array(8).keys()];
    const alone: number[][] = [];
    for (const k of ks) alone.push((await complete(cold, prompt(k), 6 + k)).ids);
    const together = await Promise.all(ks.map((k) => complete(cold, prompt(k), 6 + k)));
    expect(together.map((t) => t.ids)).toEqual(alone);
  });

  it('a prompt that extends a cached one continues from its KV caches', async () => {
    const base = prompt(3);
    const first = await complete(cached, base, 5);
    const longer = [...base, ...first.ids.slice(0, 4), 9, 8];
    const hit = await complete(cached, longer, 5);
    expect(hit.cached).toBeGreaterThan(0);
    expect(hit.ids).toEqual((await complete(cold, longer, 5)).ids);
  });
});
