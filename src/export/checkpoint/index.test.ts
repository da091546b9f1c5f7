import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, openCheckpoint } from './index.js';
import { encodeSafetensors, f32Bytes } from '../../../test/helpers/checkpoint-bytes.js';
import { writeTorchCheckpoint } from '../../../test/helpers/torch-checkpoint.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ckpt-index-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modelDir(name: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  for (const [f, data] of Object.entries(files)) await writeFile(join(d, f), data);
  return d;
}

const st = (v: number): Uint8Array => encodeSafetensors([{ key: 'w', dtype: 'F32', shape: [1], bytes: f32Bytes([v]) }]);

describe('openCheckpoint', () => {
  it('detects model.safetensors as the HF format', async () => {
    const d = await modelDir('single', { 'model.safetensors': st(1), 'config.json': '{}' });
    const c = await openCheckpoint(d);
    expect(c.format).toBe('hf');
    expect(c.weightsPath).toBe(join(d, 'model.safetensors'));
    expect(c.store.kind).toBe('safetensors');
    expect(Array.from(await c.store.readFloat32('w'))).toEqual([1]);
    await c.store.close();
  });

  it('detects a sharded safetensors index', async () => {
    const d = await modelDir('sharded', {
      'model-00001-of-00001.safetensors': st(2),
      'model.safetensors.index.json': JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors' } }),
    });
    const c = await openCheckpoint(d);
    expect(c.format).toBe('hf');
    expect(c.weightsPath).toBe(join(d, 'model.safetensors.index.json'));
    expect(Array.from(await c.store.readFloat32('w'))).toEqual([2]);
    await c.store.close();
  });

  it('detects pytorch_model.bin as the mamba_ssm format', async () => {
    const d = await modelDir('torch', {});
    await writeTorchCheckpoint(join(d, 'pytorch_model.bin'), {
      archive: 'pytorch_model',
      tensors: [{ key: 'w', storage: '0', numel: 1, size: [1] }],
      storages: { '0': f32Bytes([3]) },
    });
    const c = await openCheckpoint(d);
    expect(c.format).toBe('mamba_ssm');
    expect(c.store.kind).toBe('torch');
    expect(Array.from(await c.store.readFloat32('w'))).toEqual([3]);
    await c.store.close();
  });

  it('opens sharded torch checkpoints (pytorch_model.bin.index.json) as the mamba_ssm format', async () => {
    const d = await modelDir('torch-sharded', {
      'pytorch_model.bin.index.json': JSON.stringify({
        weight_map: { a: 'pytorch_model-00001-of-00002.bin', b: 'pytorch_model-00002-of-00002.bin' },
      }),
    });
    await writeTorchCheckpoint(join(d, 'pytorch_model-00001-of-00002.bin'), {
      tensors: [{ key: 'a', storage: '0', numel: 2, size: [2] }],
      storages: { '0': f32Bytes([5, 6]) },
    });
    await writeTorchCheckpoint(join(d, 'pytorch_model-00002-of-00002.bin'), {
      tensors: [{ key: 'b', storage: '0', numel: 1, size: [1] }],
      storages: { '0': f32Bytes([7]) },
    });
    const c = await openCheckpoint(d);
    expect(c.format).toBe('mamba_ssm');
    expect(c.store.keys()).toEqual(['a', 'b']);
    expect(Array.from(await c.store.readFloat32('a'))).toEqual([5, 6]);
    expect(Array.from(await c.store.readFloat32('b'))).toEqual([7]);
    await c.store.close();
  });

  it('prefers model.safetensors when several are present', async () => {
    const d = await modelDir('both', { 'model.safetensors': st(4), 'pytorch_model.bin': 'not read' });
    const c = await openCheckpoint(d);
    expect(c.format).toBe('hf');
    await c.store.close();
  });

  it('lists what it looked for when no weights are present', async () => {
    const d = await modelDir('empty', { 'config.json': '{}' });
    const err = await openCheckpoint(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(
      /no weights found: looked for model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin, pytorch_model\.bin\.index\.json/,
    );
    await expect(openCheckpoint(join(dir, 'missing'))).rejects.toThrow(/cannot open checkpoint directory/);
    await expect(openCheckpoint(join(d, 'config.json'))).rejects.toThrow(/expected a checkpoint directory, got a file/);
  });

  it("passes on the reader's error for a broken file", async () => {
    const d = await modelDir('broken', { 'model.safetensors': new Uint8Array(3) });
    await expect(openCheckpoint(d)).rejects.toThrow(/model\.safetensors: file has 3 bytes/);
  });
});
