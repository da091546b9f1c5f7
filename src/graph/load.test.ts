import { mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelSummary } from './load.js';
import { encodeModel } from '../onnx/proto.js';
import { EXTERNAL_ALIGNMENT, saveModel } from './serialize.js';
import { controlModel, mlpModel } from '../../test/helpers/graph-models.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'm2o-load-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function saved(name: string, external: boolean): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  const model = external ? mlpModel() : controlModel();
  await saveModel(model, dir, external ? { externalData: 'always', externalThreshold: 32 } : { externalData: 'never' });
  return join(dir, 'model.onnx');
}

describe('loadModelSummary', () => {
  it('summarises a model with external data without loading it', async () => {
    const path = await saved('mlp', true);
    const s = await loadModelSummary(path);
    expect(s.irVersion).toBe(10);
    expect([s.producerName, s.producerVersion]).toEqual(['mamba2-onnx-test', '0.0.0']);
    expect(s.opsetImports).toEqual({ '': 21 });
    expect(s.metadata).toEqual({ alpha: 'first', zeta: 'last' });
    expect(s.inputs).toEqual([{ name: 'x', dtype: 'float32', dims: ['batch', 4] }]);
    expect(s.outputs).toEqual([{ name: 'y', dtype: 'float32', dims: ['batch', 3] }]);
    expect(s.opCounts).toEqual({ 'ai.onnx::MatMul': 2, 'ai.onnx::Add': 1, 'ai.onnx::LayerNormalization': 1 });
    expect(s.initializers).toEqual({ count: 5, parameters: 12 + 3 + 9 + 3 + 3, bytes: 120, inlineBytes: 36, externalBytes: 84 });
    expect(s.externalData).toEqual([
      {
        location: 'model.onnx.data',
        path: join(root, 'mlp', 'model.onnx.data'),
        tensors: 2,
        bytes: 84,
        fileSize: EXTERNAL_ALIGNMENT + 36,
      },
    ]);
    expect(s.functions).toEqual([]);
  });

  it('counts ops inside If subgraphs and function bodies separately', async () => {
    const s = await loadModelSummary(await saved('control', false));
    expect(s.opsetImports).toEqual({ '': 21, 'ai.mamba2onnx': 1 });
    expect(s.inputs).toEqual([
      { name: 'x', dtype: 'float32', dims: [null] },
      { name: 'cond', dtype: 'bool', dims: [] },
    ]);
    expect(s.opCounts).toEqual({
      'ai.onnx::If': 1,
      'ai.onnx::Mul': 1,
      'ai.onnx::Constant': 1,
      'ai.onnx::Add': 1,
      'ai.mamba2onnx::ScaleAdd': 1,
    });
    expect(s.functionOpCounts).toEqual({
      'ai.mamba2onnx::ScaleAdd': { 'ai.onnx::Constant': 1, 'ai.onnx::Mul': 1, 'ai.onnx::Add': 1 },
    });
    expect(s.initializers).toEqual({ count: 1, parameters: 1, bytes: 4, inlineBytes: 4, externalBytes: 0 });
    expect(s.externalData).toEqual([]);
    expect(s.functions).toEqual([
      {
        domain: 'ai.mamba2onnx',
        name: 'ScaleAdd',
        inputs: ['X', 'Y'],
        outputs: ['Out'],
        attributes: ['alpha'],
        nodes: 3,
      },
    ]);
  });

  it('reports a missing or truncated external data file', async () => {
    const path = await saved('broken', true);
    const data = join(root, 'broken', 'model.onnx.data');
    await truncate(data, EXTERNAL_ALIGNMENT + 35);
    await expect(loadModelSummary(path)).rejects.toThrow(/is truncated: tensor 'w2' needs bytes 4096\.\.4132, the file has 4131/);
    await unlink(data);
    await expect(loadModelSummary(path)).rejects.toThrow(/external data file '.*model\.onnx\.data' \(tensor 'w1'\) is missing/);
  });

  it('reports a missing model, a non-ONNX file, and external locations outside the model directory', async () => {
    await expect(loadModelSummary(join(root, 'nope.onnx'))).rejects.toThrow(/model file '.*nope\.onnx' is missing/);
    const junk = join(root, 'junk.onnx');
    await writeFile(junk, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    await expect(loadModelSummary(junk)).rejects.toThrow(/not an ONNX ModelProto/);

    const escapePath = join(root, 'escape.onnx');
    await writeFile(
      escapePath,
      encodeModel({
        irVersion: 10,
        opsetImport: [{ domain: '', version: 21 }],
        metadataProps: [],
        functions: [],
        graph: {
          name: 'g',
          node: [],
          input: [],
          output: [],
          valueInfo: [],
          metadataProps: [],
          initializer: [
            {
              name: 'w',
              dims: [2],
              dataType: 1,
              dataLocation: 1,
              externalData: [
                { key: 'location', value: '../w.bin' },
                { key: 'offset', value: '0' },
                { key: 'length', value: '8' },
              ],
              floatData: [],
              int32Data: [],
              stringData: [],
              int64Data: [],
              doubleData: [],
              uint64Data: [],
              metadataProps: [],
            },
          ],
        },
      }),
    );
    await expect(loadModelSummary(escapePath)).rejects.toThrow(/location '\.\.\/w\.bin' must be a path inside the model's directory/);
  });
});
