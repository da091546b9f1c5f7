import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, makeConfig } from './config.js';
import type { Mamba2Config } from '../package/config.js';
import type { CkptDType, TensorInfo, TensorStore } from './checkpoint/types.js';
import { randomWeights } from './random-weights.js';
import { checkWeights, expectedTensors, LM_HEAD_KEY, layerWeightKeys, WeightMismatchError, weightKeys } from './weight-names.js';

const FIXTURES = process.env.MAMBA2_FIXTURES ?? fileURLToPath(new URL('../../../shared/fixtures', import.meta.url));
const HAVE_FIXTURES = existsSync(FIXTURES);
const skipNote = HAVE_FIXTURES ? '' : ` (skipped: no fixtures at ${FIXTURES})`;

const tiny = (over: Partial<Parameters<typeof makeConfig>[0]> = {}): Mamba2Config =>
  makeConfig({ dModel: 32, nLayer: 2, vocabSize: 64, dState: 8, headDim: 16, chunkSize: 8, ...over });

/** A data-less store over a list of (key, shape, dtype). */
function infoStore(entries: [string, readonly number[], CkptDType?][]): TensorStore {
  const map = new Map<string, TensorInfo>(entries.map(([key, shape, dtype]) => [key, { key, shape, dtype: dtype ?? 'F32' }]));
  return {
    kind: 'test',
    keys: () => [...map.keys()].sort(),
    info: (k) => map.get(k),
    readFloat32: () => Promise.reject(new Error('no data in this test store')),
    close: () => Promise.resolve(),
  };
}

const entriesOf = (c: Mamba2Config): [string, readonly number[]][] => expectedTensors(c).map((t) => [t.key, t.shape]);

/** The header of a .safetensors file as a data-less store (8-byte LE length, then JSON). */
function safetensorsHeader(file: string): TensorStore {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, 8);
    const header = JSON.parse(buf.toString('utf8')) as Record<string, { dtype: CkptDType; shape: number[] }>;
    delete header.__metadata__;
    return infoStore(Object.entries(header).map(([k, v]) => [k, v.shape, v.dtype]));
  } finally {
    closeSync(fd);
  }
}

describe('weightKeys', () => {
  it('uses each format’s embedding name and drops lm_head when tied', () => {
    const ssm = weightKeys(tiny());
    expect(ssm).toEqual({ embedding: 'backbone.embedding.weight', normF: 'backbone.norm_f.weight', lmHead: undefined });
    const hf = weightKeys(tiny({ format: 'hf' }), 1);
    expect(hf.embedding).toBe('backbone.embeddings.weight');
    expect(hf.lmHead).toBe(LM_HEAD_KEY);
    expect(hf.layer).toEqual({
      norm: 'backbone.layers.1.norm.weight',
      inProj: 'backbone.layers.1.mixer.in_proj.weight',
      conv: 'backbone.layers.1.mixer.conv1d.weight',
      convBias: 'backbone.layers.1.mixer.conv1d.bias',
      dtBias: 'backbone.layers.1.mixer.dt_bias',
      aLog: 'backbone.layers.1.mixer.A_log',
      D: 'backbone.layers.1.mixer.D',
      gatedNorm: 'backbone.layers.1.mixer.norm.weight',
      outProj: 'backbone.layers.1.mixer.out_proj.weight',
    });
  });

  it('adds bias keys only with bias, drops the conv bias without conv_bias', () => {
    const k = layerWeightKeys(tiny({ bias: true, convBias: false }), 0);
    expect(k.inProjBias).toBe('backbone.layers.0.mixer.in_proj.bias');
    expect(k.outProjBias).toBe('backbone.layers.0.mixer.out_proj.bias');
    expect(k.convBias).toBeUndefined();
  });

  it('refuses a layer out of range', () => {
    expect(() => weightKeys(tiny(), 2)).toThrow(RangeError);
    expect(() => layerWeightKeys(tiny(), -1)).toThrow('expected an integer in [0, 2), got -1');
  });
});

describe('expectedTensors', () => {
  it('lists docs/model.md §4.1 shapes for mamba2-130m sizes', () => {
    const c = makeConfig({ dModel: 768, nLayer: 24, vocabSize: 50288 });
    const t = new Map(expectedTensors(c).map((e) => [e.key, e.shape]));
    expect(t.size).toBe(2 + 24 * 9);
    expect(t.get('backbone.embedding.weight')).toEqual([50288, 768]);
    expect(t.get('backbone.layers.5.mixer.in_proj.weight')).toEqual([3352, 768]);
    expect(t.get('backbone.layers.5.mixer.conv1d.weight')).toEqual([1792, 1, 4]);
    expect(t.get('backbone.layers.5.mixer.conv1d.bias')).toEqual([1792]);
    expect(t.get('backbone.layers.5.mixer.D')).toEqual([24]);
    expect(t.get('backbone.layers.5.mixer.norm.weight')).toEqual([1536]);
    expect(t.get('backbone.layers.5.mixer.out_proj.weight')).toEqual([768, 1536]);
    expect(t.has(LM_HEAD_KEY)).toBe(false);
  });

  it('gives D (H·P) with D_has_hdim', () => {
    const d = expectedTensors(tiny({ dHasHdim: true })).find((e) => e.role === 'D');
    expect(d?.shape).toEqual([64]);
  });
});

describe('checkWeights', () => {
  it('accepts a complete store and reports extra keys; a tied lm_head is not "unexpected"', () => {
    const c = tiny();
    const store = infoStore([...entriesOf(c), [LM_HEAD_KEY, [64, 32]], ['backbone.extra', [1]]]);
    expect(checkWeights(c, store)).toEqual({ unexpected: ['backbone.extra'] });
    expect(checkWeights(c, randomWeights(c, 1))).toEqual({ unexpected: [] });
  });

  it('lists every missing and misshapen tensor in one error', () => {
    const c = tiny({ format: 'hf' });
    const entries = entriesOf(c).filter(([k]) => k !== LM_HEAD_KEY && !k.endsWith('layers.1.mixer.A_log'));
    const bad = entries.map(([k, s]): [string, readonly number[], CkptDType?] => {
      if (k.endsWith('layers.0.mixer.conv1d.weight')) return [k, [80, 4]];
      return k.endsWith('layers.1.mixer.D') ? [k, s, 'I64'] : [k, s];
    });
    let err: unknown;
    try {
      checkWeights(c, infoStore(bad), 'model.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    expect(e.missing).toEqual(['backbone.layers.1.mixer.A_log', LM_HEAD_KEY]);
    expect(e.mismatched).toEqual([
      { key: 'backbone.layers.0.mixer.conv1d.weight', expected: '(80, 1, 4)', got: '(80, 4)' },
      { key: 'backbone.layers.1.mixer.D', expected: 'a float dtype (F32, F16, BF16, F64)', got: 'I64' },
    ]);
    expect(e.message).toContain('model.safetensors: the checkpoint does not match the config (2 missing, 2 with');
    expect(e.message).toContain('backbone.layers.0.mixer.conv1d.weight: expected (80, 1, 4), got (80, 4)');
  });

  it('hints at the other format when only the other embedding name is present', () => {
    const hfStore = randomWeights(tiny({ format: 'hf', tieEmbeddings: true }), 3);
    expect(() => checkWeights(tiny(), hfStore)).toThrow(
      'missing backbone.embedding.weight' + ' (found backbone.embeddings.weight: is this a hf checkpoint? the config is mamba_ssm)',
    );
  });
});

describe(`fixture checkpoints${skipNote}`, () => {
  const fixtures = ['hf-tiny-untied', 'hf-small-g2'];
  it.skipIf(!HAVE_FIXTURES).each(fixtures)('%s: HF safetensors match the config', async (name) => {
    const c = await loadConfig(join(FIXTURES, name, 'hf'), 'hf');
    const store = safetensorsHeader(join(FIXTURES, name, 'hf', 'model.safetensors'));
    expect(checkWeights(c, store)).toEqual({ unexpected: [] });
  });
});
