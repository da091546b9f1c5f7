import { describe, expect, it } from 'vitest';
import { makeConfig } from './config.js';
import type { Mamba2Config } from '../package/config.js';
import { CheckpointError } from './checkpoint/types.js';
import { randomWeights } from './random-weights.js';
import { checkWeights, layerWeightKeys, weightKeys } from './weight-names.js';

const c: Mamba2Config = makeConfig({
  dModel: 64,
  nLayer: 3,
  vocabSize: 256,
  dState: 16,
  headDim: 16,
  chunkSize: 16,
  bias: true,
  tieEmbeddings: false,
});
const L0 = layerWeightKeys(c, 0);

const range = (a: Float32Array): [number, number] => [Math.min(...a), Math.max(...a)];
function meanStd(a: Float32Array): [number, number] {
  let s = 0;
  let s2 = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
  }
  const m = s / a.length;
  return [m, Math.sqrt(s2 / a.length - m * m)];
}

describe('randomWeights', () => {
  it('holds exactly the config’s tensors as F32', () => {
    const store = randomWeights(c, 0);
    expect(store.kind).toBe('random');
    expect(checkWeights(c, store)).toEqual({ unexpected: [] });
    expect(store.keys()).toEqual([...store.keys()].sort());
    expect(store.info(L0.inProj)).toEqual({ key: L0.inProj, dtype: 'F32', shape: [c.dInProj, 64] });
    expect(store.info('nope')).toBeUndefined();
  });

  it('is deterministic per seed, independent of read order, and differs across seeds and tensors', async () => {
    const a = randomWeights(c, 42);
    const b = randomWeights(c, 42);
    await b.readFloat32(L0.outProj); // different read order
    const x = await a.readFloat32(L0.inProj);
    expect(await b.readFloat32(L0.inProj)).toEqual(x);
    expect(await a.readFloat32(L0.inProj)).toEqual(x); // a re-read regenerates the same values
    expect(await randomWeights(c, 43).readFloat32(L0.inProj)).not.toEqual(x);
    expect(await randomWeights(c, 42 + 2 ** 32).readFloat32(L0.inProj)).not.toEqual(x); // high seed bits count
    expect(await a.readFloat32(layerWeightKeys(c, 1).inProj)).not.toEqual(x);
  });

  it('draws values in a trained checkpoint’s ranges', async () => {
    const s = randomWeights(c, 7);
    const read = (k: string): Promise<Float32Array> => s.readFloat32(k);
    const aLog = await read(L0.aLog);
    const [aLo, aHi] = range(aLog.map(Math.exp));
    expect(aLo).toBeGreaterThanOrEqual(1 - 1e-6);
    expect(aHi).toBeLessThanOrEqual(16 + 1e-5);
    const dt = (await read(L0.dtBias)).map((v) => Math.log1p(Math.exp(v))); // softplus
    expect(Math.min(...dt)).toBeGreaterThanOrEqual(0.001 - 1e-7);
    expect(Math.max(...dt)).toBeLessThanOrEqual(0.1 + 1e-7);
    for (const [k, lo, hi] of [
      [L0.D, 0.9, 1.1],
      [L0.norm, 0.95, 1.05],
      [L0.gatedNorm, 0.95, 1.05],
      [weightKeys(c).normF, 0.95, 1.05],
      [L0.conv, -0.5, 0.5],
      [L0.convBias ?? '', -0.5, 0.5],
    ] as const) {
      const [mn, mx] = range(await read(k));
      expect(mn, k).toBeGreaterThanOrEqual(lo);
      expect(mx, k).toBeLessThanOrEqual(hi);
      expect(mx - mn, k).toBeGreaterThan((hi - lo) / 2); // spread over the range, not constant
    }
    const [m, sd] = meanStd(await read(L0.inProj));
    expect(Math.abs(m)).toBeLessThan(0.002);
    expect(sd).toBeCloseTo(0.02, 3);
    const [, sdOut] = meanStd(await read(L0.outProj));
    expect(sdOut).toBeCloseTo(0.02 / Math.sqrt(2 * 3), 3);
    const [, sdEmb] = meanStd(await read(weightKeys(c).embedding));
    expect(sdEmb).toBeCloseTo(0.02, 3);
  });

  it('uses the format’s key names and D (H·P) with D_has_hdim', async () => {
    const hf = makeConfig({ dModel: 32, nLayer: 1, vocabSize: 64, dState: 8, headDim: 16, format: 'hf', dHasHdim: true });
    const s = randomWeights(hf, 1);
    expect(s.keys()).toContain('backbone.embeddings.weight');
    expect(s.keys()).toContain('lm_head.weight');
    expect((await s.readFloat32('backbone.layers.0.mixer.D')).length).toBe(64);
  });

  it('creates a 2.7b-shaped store instantly, generating only what is read', async () => {
    const big = makeConfig({ dModel: 2560, nLayer: 64, vocabSize: 50288 });
    const t0 = performance.now();
    const s = randomWeights(big, 0);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(s.keys().length).toBe(2 + 64 * 9);
    expect(s.info('backbone.layers.63.mixer.in_proj.weight')?.shape).toEqual([10576, 2560]);
    expect((await s.readFloat32('backbone.layers.63.mixer.A_log')).length).toBe(80);
  });

  it('refuses unknown keys, reads after close, and bad seeds', async () => {
    const s = randomWeights(c, 0);
    await expect(s.readFloat32('lm_head.bias')).rejects.toThrow(CheckpointError);
    await expect(s.readFloat32('lm_head.bias')).rejects.toThrow('random weights (seed 0): no tensor "lm_head.bias"');
    await s.close();
    await expect(s.readFloat32(L0.aLog)).rejects.toThrow('after close()');
    expect(() => randomWeights(c, 1.5)).toThrow(RangeError);
    expect(() => randomWeights(c, Number.NaN)).toThrow('seed: expected a safe integer, got NaN');
  });
});
