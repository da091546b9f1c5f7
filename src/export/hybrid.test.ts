/**
 * A mamba2attn-shaped hybrid with random weights (mamba_ssm format: attention layers with GQA,
 * rotary on part of the head, a conv over qkv, biases, MHA's own MLP branch; a GatedMLP in every
 * layer; two B/C groups): its graph I/O, and that every way of feeding tokens computes the same
 * function — chunked prefill vs one token at a time, a prefill split in two, rows of a batch, the
 * SSD forms, `--logits last` and quantized weights.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxDiff } from '../../test/helpers/ort.js';
import { type States, Runner } from '../../test/helpers/model-runner.js';
import { exportModel, type ExportOptions } from './index.js';
import { loadPreset } from './presets.js';
import { randomWeights } from './random-weights.js';
import { checkWeights, WeightMismatchError } from './weight-names.js';
import { hybridOf } from '../package/layers.js';

const root = mkdtempSync(join(tmpdir(), 'm2o-hybrid-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PRESET = join(root, 'mamba2attn-test.json');
writeFileSync(
  PRESET,
  JSON.stringify({
    source: 'none (random weights)',
    format: 'mamba_ssm',
    config: {
      d_model: 48,
      n_layer: 4,
      d_intermediate: 72,
      vocab_size: 100,
      pad_vocab_size_multiple: 16,
      tie_embeddings: false,
      ssm_cfg: { layer: 'Mamba2', d_state: 16, headdim: 16, ngroups: 2, chunk_size: 8 },
      attn_layer_idx: [1, 3],
      attn_cfg: {
        causal: true,
        num_heads: 6,
        num_heads_kv: 2,
        head_dim: 8,
        rotary_emb_dim: 4,
        d_conv: 4,
        qkv_proj_bias: true,
        out_proj_bias: false,
        mlp_dim: 40,
      },
    },
  }),
);

const ids = (n: number, seed: number): number[] => Array.from({ length: n }, (_, t) => (seed * 31 + t * 17) % 100);

async function exported(name: string, opts: Omit<ExportOptions, 'outDir'> = {}): Promise<Runner> {
  const dir = join(root, name);
  await exportModel({ preset: PRESET, randomWeights: true, seed: 7 }, { ...opts, outDir: dir });
  return Runner.open(dir);
}

/** Max |Δ| over every state tensor of two state sets (same names and sizes). */
function statesDiff(a: States, b: States): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(
    ...Object.keys(a).map((k) => {
      expect(a[k]!.dims, k).toEqual(b[k]!.dims);
      return maxDiff(a[k]!.data as Float32Array, b[k]!.data as Float32Array).max;
    }),
  );
}

describe('mamba2attn-shaped hybrid (random weights)', () => {
  let run: Runner;
  beforeAll(async () => {
    run = await exported('fp32');
  });
  afterAll(() => run?.release());

  it('reads the hybrid config and writes THE I/O table: KV caches with a symbolic past axis, an MHA conv state', () => {
    const h = hybridOf(run.meta.config)!;
    expect(h).toMatchObject({
      family: 'mamba_ssm',
      layers: ['mamba2', 'attention', 'mamba2', 'attention'],
      mlp: { kind: 'gated', hidden: 128 },
    });
    expect(h.attention).toMatchObject({
      nHeads: 6,
      nKvHeads: 2,
      headDim: 8,
      rotaryDim: 4,
      convKernel: 4,
      qkvBias: true,
      outBias: false,
      mlpDim: 256,
    });
    const shapes = (side: 'inputs' | 'outputs') =>
      Object.fromEntries(run.meta.io[side].map((e) => [e.name, `${e.role} ${e.shape.join(',')}`]));
    expect(shapes('inputs')).toEqual({
      input_ids: 'input_ids batch,sequence',
      'past_conv.0': 'conv_state batch,160,3',
      'past_ssm.0': 'ssm_state batch,6,16,16',
      'past_key.1': 'key_cache batch,2,past_sequence,8',
      'past_value.1': 'value_cache batch,2,past_sequence,8',
      'past_conv.1': 'conv_state batch,80,3',
      'past_conv.2': 'conv_state batch,160,3',
      'past_ssm.2': 'ssm_state batch,6,16,16',
      'past_key.3': 'key_cache batch,2,past_sequence,8',
      'past_value.3': 'value_cache batch,2,past_sequence,8',
      'past_conv.3': 'conv_state batch,80,3',
    });
    expect(shapes('outputs')['present_key.3']).toBe('key_cache batch,2,past_sequence+sequence,8');
    expect(Object.keys(shapes('outputs'))).toEqual([
      'logits',
      ...Object.keys(shapes('inputs'))
        .slice(1)
        .map((k) => k.replace('past_', 'present_')),
    ]);
  });

  it('chunked prefill equals one token at a time (logits and every state, KV caches included)', async () => {
    const seq = ids(21, 1); // crosses chunk boundaries (Q = 8) with padding
    const whole = await run.forward([seq]);
    let states: States | undefined;
    const V = whole.dims[2]!;
    let worst = 0;
    for (let t = 0; t < seq.length; t++) {
      const s = await run.forward([[seq[t]!]], states);
      worst = Math.max(worst, maxDiff(s.logits, whole.logits.subarray(t * V, (t + 1) * V)).max);
      states = s.states;
    }
    expect(worst).toBeLessThan(1e-5);
    expect(statesDiff(states!, whole.states)).toBeLessThan(1e-5);
    expect(whole.states['past_key.1']!.dims).toEqual([1, 2, 21, 8]);
  });

  it('a prefill split in two calls equals one call; batch rows equal separate runs', async () => {
    const a = ids(21, 2);
    const b = ids(21, 3);
    const whole = await run.forward([a, b]);
    const first = await run.forward([a.slice(0, 13), b.slice(0, 13)]);
    const rest = await run.forward([a.slice(13), b.slice(13)], first.states);
    const V = whole.dims[2]!;
    const tail = (l: Float32Array, row: number): Float32Array => l.subarray((row * 21 + 13) * V, (row + 1) * 21 * V);
    const restRow = (row: number): Float32Array => rest.logits.subarray(row * 8 * V, (row + 1) * 8 * V);
    expect(Math.max(maxDiff(restRow(0), tail(whole.logits, 0)).max, maxDiff(restRow(1), tail(whole.logits, 1)).max)).toBeLessThan(1e-5);
    expect(statesDiff(rest.states, whole.states)).toBeLessThan(1e-5);
    const alone = await run.forward([b]);
    expect(maxDiff(whole.logits.subarray(21 * V), alone.logits).max).toBeLessThan(1e-5);
  });

  it('every SSD form and --logits last compute the same function', async () => {
    const seq = ids(19, 4);
    const ref = await run.forward([seq]);
    const V = ref.dims[2]!;
    for (const ssd of ['function', 'contrib', 'scan'] as const) {
      const r = await exported(`ssd-${ssd}`, { ssd });
      const got = await r.forward([seq]);
      expect(maxDiff(got.logits, ref.logits).max, ssd).toBeLessThan(1e-4);
      expect(statesDiff(got.states, ref.states), ssd).toBeLessThan(1e-4);
      await r.release();
    }
    const last = await exported('last', { logits: 'last' });
    const got = await last.forward([seq]);
    expect(got.dims).toEqual([1, 1, V]);
    expect(maxDiff(got.logits, ref.logits.subarray(18 * V)).max).toBeLessThan(1e-5);
    await last.release();
  });

  it('fp16 and int4 weights (attention and MLP projections included) stay close to fp32', async () => {
    const seq = ids(12, 5);
    const ref = await run.forward([seq]);
    const scale = Math.max(...ref.logits.map(Math.abs));
    for (const [dtype, tol] of [
      ['fp16', 0.01],
      ['int4', 0.2],
    ] as const) {
      const r = await exported(dtype, { dtype });
      const got = await r.forward([seq]);
      expect(maxDiff(got.logits, ref.logits).max / scale, dtype).toBeLessThan(tol); // relative to the largest logit
      await r.release();
    }
  });

  it('names a missing attention or MLP tensor', async () => {
    const c = loadPreset(PRESET).config;
    const store = randomWeights(c, 1);
    const gone = new Set(['backbone.layers.1.mixer.conv1d.bias', 'backbone.layers.2.mlp.fc1.weight']);
    const holed = {
      ...store,
      keys: () => store.keys().filter((k) => !gone.has(k)),
      info: (k: string) => (gone.has(k) ? undefined : store.info(k)),
    };
    expect(() => checkWeights(c, holed)).toThrow(WeightMismatchError);
    expect(() => checkWeights(c, holed)).toThrow(
      /missing backbone\.layers\.1\.mixer\.conv1d\.bias[\s\S]*missing backbone\.layers\.2\.mlp\.fc1\.weight/,
    );
  });
});
