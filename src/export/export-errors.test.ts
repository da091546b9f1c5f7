/**
 * Bad input to exportModel: a clear error that names the problem, and nothing left behind
 * (no output directory, no temporary directory).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors } from './checkpoint/safetensors.js';
import { encodeSafetensors, f32Bytes, type TestTensor } from '../../test/helpers/checkpoint-bytes.js';
import { exportModel } from './index.js';

const FIXTURE = resolve(import.meta.dirname, '../../test/fixtures/tiny-g1/hf');
const root = mkdtempSync(join(tmpdir(), 'm2o-bad-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A copy of the tiny HF fixture with `edit` applied; returns the checkpoint dir and a fresh parent for the output. */
async function broken(edit: (dir: string) => Promise<void> | void): Promise<{ ckpt: string; parent: string }> {
  const base = join(root, `case${n++}`);
  const ckpt = join(base, 'ckpt');
  const parent = join(base, 'out');
  mkdirSync(parent, { recursive: true });
  cpSync(FIXTURE, ckpt, { recursive: true });
  await edit(ckpt);
  return { ckpt, parent };
}

/** Rewrites model.safetensors keeping the tensors `keep` accepts, reshaped by `reshape`. */
async function rewrite(
  dir: string,
  keep: (k: string) => boolean,
  reshape: (k: string, s: readonly number[]) => readonly number[] = (_k, s) => s,
) {
  const st = await openSafetensors(join(dir, 'model.safetensors'));
  const tensors: TestTensor[] = [];
  for (const k of st.keys()) {
    if (!keep(k)) continue;
    const info = st.info(k)!;
    const data = await st.readFloat32(k);
    const shape = reshape(k, info.shape);
    const count = shape.reduce((a, b) => a * b, 1);
    const vals = count === data.length ? data : new Float32Array(count);
    tensors.push({ key: k, dtype: 'F32', shape: [...shape], bytes: f32Bytes(vals) });
  }
  await st.close();
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
}

async function expectFailure(ckpt: string, parent: string, message: RegExp): Promise<void> {
  const out = join(parent, 'model');
  await expect(exportModel({ checkpointDir: ckpt }, { outDir: out })).rejects.toThrow(message);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(parent)).toEqual([]); // no temporary directory left either
}

describe('exportModel refuses bad checkpoints and writes nothing', () => {
  it('missing tensor', async () => {
    const { ckpt, parent } = await broken((d) => rewrite(d, (k) => k !== 'backbone.layers.1.mixer.A_log'));
    await expectFailure(ckpt, parent, /backbone\.layers\.1\.mixer\.A_log/);
  });

  it('wrong shape', async () => {
    const { ckpt, parent } = await broken((d) =>
      rewrite(
        d,
        () => true,
        (k, s) => (k === 'backbone.layers.0.mixer.conv1d.weight' ? [s[0]!, 1, 3] : s),
      ),
    );
    await expectFailure(ckpt, parent, /conv1d\.weight: expected \(80, 1, 4\), got \(80, 1, 3\)/);
  });

  it('truncated weights file', async () => {
    const { ckpt, parent } = await broken((d) => truncateSync(join(d, 'model.safetensors'), 5000));
    await expectFailure(ckpt, parent, /model\.safetensors/);
  });

  it('unknown model_type', async () => {
    const { ckpt, parent } = await broken((d) => {
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, model_type: 'llama' }));
    });
    await expectFailure(ckpt, parent, /model_type.*llama/);
  });

  it('impossible sizes (num_heads × head_dim ≠ expand × hidden_size)', async () => {
    const { ckpt, parent } = await broken((d) => {
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, num_heads: 5 }));
    });
    await expectFailure(ckpt, parent, /num_heads/);
  });

  it('NaN weights are reported, not exported', async () => {
    const { ckpt, parent } = await broken((d) => rewrite(d, () => true));
    // poison one value of the rewritten file: find the D tensor and write a NaN into it
    const st = await openSafetensors(join(ckpt, 'model.safetensors'));
    const keys = st.keys();
    await st.close();
    const tensors: TestTensor[] = [];
    const st2 = await openSafetensors(join(ckpt, 'model.safetensors'));
    for (const k of keys) {
      const a = await st2.readFloat32(k);
      if (k === 'backbone.layers.0.mixer.D') a[1] = NaN;
      tensors.push({ key: k, dtype: 'F32', shape: [...st2.info(k)!.shape], bytes: f32Bytes(a) });
    }
    await st2.close();
    writeFileSync(join(ckpt, 'model.safetensors'), encodeSafetensors(tensors));
    await expectFailure(ckpt, parent, /backbone\.layers\.0\.mixer\.D.*NaN/);
  });

  it('no weights file at all', async () => {
    const { ckpt, parent } = await broken((d) => rmSync(join(d, 'model.safetensors')));
    await expectFailure(ckpt, parent, /model\.safetensors|pytorch_model\.bin/);
  });
});
