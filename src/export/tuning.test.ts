/**
 * Graph-construction choices that keep the math (export --segsum, --conv, --rmsnorm, --chunk-size):
 * every variant computes the default export's logits and states, prefill and decode.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelSummary } from '../graph/load.js';
import { maxDiff } from '../../test/helpers/ort.js';
import { Runner } from '../../test/helpers/model-runner.js';
import type { Tuning } from './blocks.js';
import { exportModel } from './index.js';

const tmp = mkdtempSync(join(tmpdir(), 'm2o-tuning-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ckpt = resolve(import.meta.dirname, '../../test/fixtures/small-g2/hf');
const ids = [Array.from({ length: 41 }, (_, i) => (i * 7) % 128), Array.from({ length: 41 }, (_, i) => (i * 11 + 3) % 128)];

async function run(dir: string) {
  const r = await Runner.open(dir);
  const pre = await r.forward(ids);
  const step = await r.forward([[5], [9]], pre.states);
  await r.release();
  return { pre, step };
}

describe('tuning variants equal the default export', async () => {
  const base = await exportModel({ checkpointDir: ckpt }, { outDir: join(tmp, 'base') });
  const want = await run(base.outDir);
  const variants: [string, { tuning?: Tuning; chunkSize?: number }][] = [
    ['segsum diff', { tuning: { segsum: 'diff' } }],
    ['conv node', { tuning: { conv: 'conv' } }],
    ['fused rmsnorm', { tuning: { rmsnorm: 'fused' } }],
    ['standard-op step', { tuning: { step: 'ops' } }],
    ['chunk size 4', { chunkSize: 4 }],
  ];
  for (const [name, o] of variants) {
    it(name, async () => {
      const v = await exportModel({ checkpointDir: ckpt }, { outDir: join(tmp, name.replace(/ /g, '-')), ...o });
      const got = await run(v.outDir);
      expect(maxDiff(got.pre.logits, want.pre.logits).max).toBeLessThan(2e-5);
      expect(maxDiff(got.step.logits, want.step.logits).max).toBeLessThan(2e-5);
      for (const k of Object.keys(want.step.states)) {
        expect(maxDiff(got.step.states[k]!.data as Float32Array, want.step.states[k]!.data as Float32Array).max, k).toBeLessThan(2e-5);
      }
      if (name === 'fused rmsnorm') {
        // fused: block norms, gated norms (G = 2: per group) and the final norm as RMSNormalization in
        // both If branches, ai.onnx 23 / IR 11; the default keeps standard ops at ai.onnx 21 / IR 10
        const fused = await loadModelSummary(join(v.outDir, 'model.onnx'));
        expect(fused.opCounts['ai.onnx::RMSNormalization']).toBe(2 * (2 * base.meta.config.nLayer + 1));
        expect([fused.opsetImports[''], fused.irVersion]).toEqual([23, 11]);
        const dflt = await loadModelSummary(join(base.outDir, 'model.onnx'));
        expect(dflt.opCounts['ai.onnx::RMSNormalization']).toBeUndefined();
        expect([dflt.opsetImports[''], dflt.irVersion]).toEqual([21, 10]);
      }
      if (name === 'standard-op step') {
        // default: the step branch's conv and SSD update as ORT contrib ops, one per layer; none with 'ops'
        const dflt = (await loadModelSummary(join(base.outDir, 'model.onnx'))).opCounts;
        expect(dflt['com.microsoft::LinearAttention']).toBe(base.meta.config.nLayer);
        expect(dflt['com.microsoft::CausalConvWithState']).toBe(base.meta.config.nLayer);
        const ops = (await loadModelSummary(join(v.outDir, 'model.onnx'))).opCounts;
        expect(ops['com.microsoft::LinearAttention']).toBeUndefined();
        expect(ops['com.microsoft::CausalConvWithState']).toBeUndefined();
      }
    });
  }
});
