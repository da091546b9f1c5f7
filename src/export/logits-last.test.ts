/** `logits: 'last'` exports: the last position's logits and the states equal the full export's. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { maxDiff } from '../../test/helpers/ort.js';
import { Runner } from '../../test/helpers/model-runner.js';
import { exportModel } from './index.js';

const tmp = mkdtempSync(join(tmpdir(), 'm2o-last-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('last-position logits and states equal the full-logits export', async () => {
  const ckpt = resolve(import.meta.dirname, '../../test/fixtures/small-g2/hf');
  const full = await exportModel({ checkpointDir: ckpt }, { outDir: join(tmp, 'all') });
  const last = await exportModel({ checkpointDir: ckpt }, { outDir: join(tmp, 'last'), logits: 'last' });
  expect(last.meta.io.outputs[0]!.shape).toEqual(['batch', 1, full.meta.config.vocabSize]);
  const [a, b] = [await Runner.open(full.outDir), await Runner.open(last.outDir)];
  const ids = [Array.from({ length: 37 }, (_, i) => (i * 5) % 100), Array.from({ length: 37 }, (_, i) => (i * 3) % 100)];
  const ra = await a.forward(ids);
  const rb = await b.forward(ids);
  const V = full.meta.config.vocabSize;
  expect(rb.dims).toEqual([2, 1, V]);
  for (let row = 0; row < 2; row++) {
    const want = ra.logits.subarray((row * 37 + 36) * V, (row * 37 + 37) * V);
    expect(maxDiff(rb.logits.subarray(row * V, (row + 1) * V), want).max).toBeLessThan(1e-5);
  }
  for (const k of Object.keys(ra.states))
    expect(maxDiff(rb.states[k]!.data as Float32Array, ra.states[k]!.data as Float32Array).max).toBe(0);
  const step = await b.forward([[1], [2]], rb.states); // the one-token branch is unchanged
  expect(step.dims).toEqual([2, 1, V]);
  await a.release();
  await b.release();
});
