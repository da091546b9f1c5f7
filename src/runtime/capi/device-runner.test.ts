/**
 * DeviceDecodeRunner on the CPU EP: the ping-pong path the GPU uses (buffers allocated once per
 * batch size, bound as outputs, swapped every step), checked against Mamba2Model decoding the
 * full export token by token. The CPU EP has no graph capture; the Identity copies GPU EPs need
 * are exercised here too (ortCopies).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../export/index.js';
import { Mamba2Model } from '../model.js';
import { nodeBackend } from '../node.js';
import type { Mamba2State } from '../state.js';
import { DeviceDecodeRunner } from './device-runner.js';

const root = mkdtempSync(join(tmpdir(), 'm2-runner-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const full = join(root, 'full');
const step = join(root, 'step');
await exportModel({ preset: 'tiny', randomWeights: true, seed: 3 }, { outDir: full });
await exportModel({ preset: 'tiny', randomWeights: true, seed: 3 }, { outDir: step, paths: 'step' });

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const argmax = (row: Float32Array): number => row.indexOf(Math.max(...row));

describe.each([false, true])('DeviceDecodeRunner on the CPU EP (ORT Identity copies: %s)', (ortCopies) => {
  let ref: Mamba2Model;
  let runner: DeviceDecodeRunner;
  beforeAll(async () => {
    ref = await Mamba2Model.load(full, { backend: nodeBackend() });
    runner = await DeviceDecodeRunner.load(step, { ortCopies, graphCapture: true });
  });
  afterAll(async () => {
    await runner?.release();
    await ref?.release();
  });

  it('opens the step-only graph on the CPU EP, where nothing is captured', () => {
    expect(runner.ep).toBe('cpu');
    expect(runner.capturesGraph).toBe(false);
    expect(runner.meta.singleStep).toBe('only');
    expect(runner.specs).toEqual(ref.specs);
  });

  it('decoding from a prefill state matches Mamba2Model step by step (logits ≤ 1e-5, same greedy ids, same state)', async () => {
    const V = ref.config.realVocabSize;
    const prompt = Array.from({ length: 13 }, (_, t) => (t * 29 + 5) % V);
    const pre = await ref.forward([prompt]);
    await runner.begin(pre.state);
    let state: Mamba2State = pre.state;
    let tok = argmax(pre.logits.at(0, -1).subarray(0, V));
    for (let k = 0; k < 9; k++) {
      const want = await ref.forward([[tok]], state);
      state.dispose();
      state = want.state;
      const got = await runner.step([tok]);
      expect(got.dims).toEqual([1, 1, ref.config.vocabSize]);
      expect(maxDiff(got.at(0), want.logits.at(0))).toBeLessThanOrEqual(1e-5);
      const next = argmax(got.at(0).subarray(0, V));
      expect(next).toBe(argmax(want.logits.at(0).subarray(0, V)));
      tok = next;
    }
    const snap = await runner.snapshot();
    const [a, b] = [await snap.toHost(), await state.toHost()];
    a.tensors.forEach((t, i) => expect(maxDiff(t.data, b.tensors[i]!.data)).toBeLessThanOrEqual(1e-5));
    snap.dispose();
    state.dispose();
  });

  it('buffers are allocated once per batch size and reused when a batch size comes back', async () => {
    const before = runner.batches.length;
    await runner.begin(undefined, 2);
    const zero = ref.zeroState(2);
    let state = zero;
    for (const ids of [
      [3, 4],
      [5, 6],
      [7, 8],
    ]) {
      const want = await ref.forward(
        ids.map((i) => [i]),
        state,
      );
      state.dispose();
      state = want.state;
      const got = await runner.step(ids);
      expect(maxDiff(got.data, want.logits.data)).toBeLessThanOrEqual(1e-5);
    }
    state.dispose();
    expect(runner.batches).toContain(2);
    await runner.begin(undefined, 1);
    await runner.begin(await (await ref.forward([[1, 2]])).state, 1);
    expect(runner.batches.length).toBe(Math.max(before, 1) + 1);
    await expect(runner.step([1, 2])).rejects.toThrow(/expected 1 token ids/);
    await expect(runner.step([ref.config.vocabSize])).rejects.toThrow(/ids\[0\] expected an integer in \[0, 256\)/);
  });
});

describe('DeviceDecodeRunner: what it refuses', () => {
  it('graph capture needs a step-only export; hybrids (growing KV caches) cannot use fixed buffers', async () => {
    await expect(DeviceDecodeRunner.load(full, { graphCapture: true })).rejects.toThrow(
      /graph capture needs a step-only graph \(export with --paths step\)/,
    );
    const preset = join(root, 'hybrid.json');
    writeFileSync(
      preset,
      JSON.stringify({
        source: 'none (random weights)',
        format: 'mamba_ssm',
        config: {
          d_model: 32,
          n_layer: 2,
          d_intermediate: 0,
          vocab_size: 64,
          pad_vocab_size_multiple: 16,
          ssm_cfg: { layer: 'Mamba2', d_state: 8, headdim: 16, chunk_size: 8 },
          attn_layer_idx: [1],
          attn_cfg: { causal: true, num_heads: 4, num_heads_kv: 2, rotary_emb_dim: 4 },
        },
      }),
    );
    const hybrid = join(root, 'hybrid');
    await exportModel({ preset, randomWeights: true, seed: 2 }, { outDir: hybrid, paths: 'step' });
    await expect(DeviceDecodeRunner.load(hybrid)).rejects.toThrow(/KV caches \(a hybrid\)/);
  });

  it('released twice is safe; a released runner says so', async () => {
    const r = await DeviceDecodeRunner.load(step);
    await r.begin();
    await r.release();
    await r.release();
    await expect(r.step([1])).rejects.toThrow(/released/);
  });
});
