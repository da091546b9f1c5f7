/**
 * The runtime on a hybrid (Mamba-2 + attention, random weights): the state now holds KV caches
 * that start empty (past length 0) and grow each call. Generation, forward, batches of unequal
 * prompts and save/restore behave as for pure Mamba-2 models; on WebGPU (when an adapter exists)
 * the empty caches and device-resident states work too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../src/export/index.js';
import { Mamba2Model } from '../../src/runtime/model.js';
import { concatHostStates } from '../../src/runtime/state-rows.js';

const root = mkdtempSync(join(tmpdir(), 'm2-hybrid-rt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

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
      pad_vocab_size_multiple: 16,
      ssm_cfg: { layer: 'Mamba2', d_state: 8, headdim: 16, chunk_size: 8 },
      attn_layer_idx: [1],
      attn_cfg: { causal: true, num_heads: 4, num_heads_kv: 2, rotary_emb_dim: 4, d_conv: 4 },
    },
  }),
);
const dir = join(root, 'model');
await exportModel({ preset, randomWeights: true, seed: 11 }, { outDir: dir });

const prompt = (n: number, s: number): number[] => Array.from({ length: n }, (_, t) => (s * 13 + t * 7) % 60);

/** Greedy ids by hand: prefill, then one forward per token through the state. */
async function greedyByHand(m: Mamba2Model, ids: number[], n: number): Promise<number[]> {
  let r = await m.forward([ids]);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const row = r.logits.at(0, -1).subarray(0, m.config.realVocabSize);
    const next = row.indexOf(Math.max(...row));
    out.push(next);
    const s = r.state;
    r = await m.forward([[next]], s);
    s.dispose();
  }
  r.state.dispose();
  return out;
}

describe('runtime on a hybrid (CPU)', () => {
  let m: Mamba2Model;
  beforeAll(async () => {
    m = await Mamba2Model.load(dir);
  });
  afterAll(() => m?.release());

  it('a fresh state has empty KV caches; they grow by the tokens of each call', async () => {
    expect(m.hasKvCache).toBe(true);
    const z = m.zeroState(2);
    const dims = Object.fromEntries(m.specs.map((s, i) => [s.input, z.tensors[i]!.dims]));
    expect(dims['past_key.1']).toEqual([2, 2, 0, 8]);
    expect(dims['past_conv.1']).toEqual([2, 64, 3]); // the MHA conv state over q|k|v
    const r = await m.forward([prompt(5, 1), prompt(5, 2)], z);
    const k = m.specs.findIndex((s) => s.input === 'past_value.1');
    expect(r.state.tensors[k]!.dims).toEqual([2, 2, 5, 8]);
    z.dispose();
    r.state.dispose();
  });

  it('generate (greedy) equals decoding by hand through forward()', async () => {
    const ids = prompt(11, 3);
    const r = await m.generate(ids, { maxNewTokens: 12, stopTokenIds: [] });
    expect(r.outputIds).toEqual(await greedyByHand(m, ids, 12));
    expect(r.finishReason).toBe('length');
  });

  it('generateBatch with prompts of unequal length equals each prompt alone', async () => {
    const prompts = [prompt(9, 4), prompt(4, 5), prompt(9, 6)];
    const batch = await m.generateBatch(prompts, { maxNewTokens: 6 });
    for (const [i, p] of prompts.entries())
      expect(batch[i]!.outputIds, `row ${i}`).toEqual((await m.generate(p, { maxNewTokens: 6 })).outputIds);
  });

  it('a saved state (KV caches included) continues exactly like the live one', async () => {
    const ids = prompt(14, 7);
    const whole = await m.forward([ids]);
    const head = await m.forward([ids.slice(0, 9)]);
    const bytes = await m.saveState(head.state);
    const restored = m.loadState(bytes);
    const tail = await m.forward([ids.slice(9)], restored);
    const V = m.config.vocabSize;
    const want = whole.logits.data.subarray(9 * V);
    expect(tail.logits.data.length).toBe(want.length);
    expect(Math.max(...tail.logits.data.map((x, i) => Math.abs(x - want[i]!)))).toBeLessThan(1e-5);
    const fresh = m.loadState(await m.saveState(m.zeroState(1))); // an empty cache round-trips too
    expect(fresh.tensors[m.specs.findIndex((s) => s.input === 'past_key.1')]!.dims).toEqual([1, 2, 0, 8]);
    for (const s of [whole.state, head.state, restored, tail.state, fresh]) s.dispose();
  });

  it('refuses to stack states of different KV lengths, naming the cause', async () => {
    const a = await m.forward([prompt(3, 1)]);
    const b = await m.forward([prompt(4, 1)]);
    const hosts = await Promise.all([a.state.toHost(), b.state.toHost()]);
    expect(() => concatHostStates(hosts)).toThrow(/KV caches of different lengths/);
    a.state.dispose();
    b.state.dispose();
  });
});

const webgpu = await Mamba2Model.load(dir, { ep: 'webgpu' }).catch((e: unknown) => e as Error);
describe.skipIf(webgpu instanceof Error)('runtime on a hybrid (WebGPU, device-resident state)', () => {
  const g = webgpu as Mamba2Model;
  afterAll(() => g.release());

  it('starts from empty KV caches and decodes the same greedy ids as the CPU', async () => {
    expect(g.ep).toBe('webgpu');
    const cpu = await Mamba2Model.load(dir);
    const ids = prompt(10, 8);
    const want = (await cpu.generate(ids, { maxNewTokens: 8 })).outputIds;
    await cpu.release();
    expect((await g.generate(ids, { maxNewTokens: 8 })).outputIds).toEqual(want);
    expect(g.deviceState).toBe(true);
  });
});
if (webgpu instanceof Error) {
  describe('runtime on a hybrid (WebGPU)', () => {
    it.skip(`skipped: no WebGPU adapter here (${webgpu.message.slice(0, 120)})`, () => {});
  });
}
