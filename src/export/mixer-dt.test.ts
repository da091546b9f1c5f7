/**
 * The dt pipeline (docs/model.md §6.5: softplus, identity above 20) with and without the explicit Where:
 * the contrib step drops the Where because ONNX Runtime's Softplus is the stable form. This checks
 * that claim on every EP here, over inputs that overflow a naive log(1 + eˣ) in fp32 (x > 88).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelBuilder } from '../graph/builder.js';
import { saveModel } from '../graph/serialize.js';
import { softplus } from '../reference/blocks.js';
import { Ctx } from './blocks.js';
import { makeConfig } from './config.js';
import { dtPipeline } from './mixer.js';

const X = [-1000, -100, -30, -5, -0.5, 0, 0.5, 5, 19.99, 20, 20.01, 50, 87, 88.8, 89, 100, 1000, 3e38];
const tmp = mkdtempSync(join(tmpdir(), 'm2o-dt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function model(stable: boolean): Promise<string> {
  const c = makeConfig({ dModel: 16, nLayer: 1, vocabSize: 8, headDim: 4, dState: 4, nGroups: 1, chunkSize: 4 });
  const m = new ModelBuilder({ name: 'dt' });
  const g = m.graph;
  const dt = g.input('dt', 'float32', [X.length]); // dt + dt_bias, as in_proj returns it
  g.output(dtPipeline(new Ctx(g, c), dt, stable), 'y');
  const dir = join(tmp, stable ? 'stable' : 'where');
  mkdirSync(dir, { recursive: true });
  await saveModel(m.finish(), dir, { externalData: 'never' });
  return join(dir, 'model.onnx');
}

const want = Float32Array.from(X, (x) => softplus(x));
const webgpu = await ort.InferenceSession.create(await model(true), { executionProviders: ['webgpu'], logSeverityLevel: 4 }).then(
  (s) => s.release().then(() => true),
  () => false,
);

describe('dt pipeline: Softplus alone equals the thresholded form', () => {
  for (const ep of ['cpu', ...(webgpu ? ['webgpu'] : [])]) {
    for (const stable of [true, false]) {
      it(`${ep}, ${stable ? 'Softplus alone (contrib step)' : 'with the Where (ops step)'}`, async () => {
        const s = await ort.InferenceSession.create(await model(stable), { executionProviders: [ep as 'cpu'], logSeverityLevel: 3 });
        const y = (await s.run({ dt: new ort.Tensor('float32', Float32Array.from(X), [X.length]) })).y!.data as Float32Array;
        await s.release();
        X.forEach((x, i) => {
          expect(Number.isFinite(y[i]!), `softplus(${x}) = ${y[i]}`).toBe(true);
          expect(Math.abs(y[i]! - want[i]!), `softplus(${x}) = ${y[i]}, want ${want[i]}`).toBeLessThanOrEqual(
            1e-6 * Math.max(1, Math.abs(want[i]!)),
          );
        });
      });
    }
  }
  if (!webgpu) it.skip('webgpu: no adapter here', () => {});
});
