import { mkdir, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFloat16 } from '@petamoriken/float16';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRefusal } from '../../../test/helpers/errors.js';
import { openSafetensors, openSafetensorsIndex } from './safetensors.js';
import { CheckpointError } from './types.js';
import {
  bf16Bytes,
  encodeSafetensors,
  f16Bytes,
  f32Bytes,
  f64Bytes,
  rawSafetensors,
  seededFloats,
  u16Bytes,
} from '../../../test/helpers/checkpoint-bytes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'st-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeTmp(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

/** Open `bytes` as a safetensors file and expect a CheckpointError matching `msg`. */
async function expectRefused(name: string, bytes: Uint8Array, msg: RegExp): Promise<void> {
  const p = await writeTmp(name, bytes);
  const err = await openRefusal(() => openSafetensors(p));
  expect(err).toBeInstanceOf(CheckpointError);
  expect((err as CheckpointError).path).toBe(p);
  expect((err as Error).message).toMatch(msg);
}

const allBits = Uint16Array.from({ length: 65536 }, (_, i) => i);

describe('openSafetensors: reading', () => {
  it('reads F32 exactly, lists keys sorted, reports info and metadata', async () => {
    const w = seededFloats(12, 1);
    const p = await writeTmp(
      'f32.safetensors',
      encodeSafetensors(
        [
          { key: 'z.weight', dtype: 'F32', shape: [3, 4], bytes: f32Bytes(w) },
          { key: 'a.bias', dtype: 'F32', shape: [2], bytes: f32Bytes([1.5, -2]) },
          { key: 'ids', dtype: 'I64', shape: [2], bytes: new Uint8Array(16) },
        ],
        { format: 'pt' },
      ),
    );
    const s = await openSafetensors(p);
    expect(s.kind).toBe('safetensors');
    expect(s.keys()).toEqual(['a.bias', 'ids', 'z.weight']);
    expect(s.info('z.weight')).toEqual({ key: 'z.weight', dtype: 'F32', shape: [3, 4] });
    expect(s.info('nope')).toBeUndefined();
    expect(s.metadata).toEqual({ format: 'pt' });
    expect(await s.readFloat32('z.weight')).toEqual(w);
    expect(Array.from(await s.readFloat32('a.bias'))).toEqual([1.5, -2]);
    await expect(s.readFloat32('ids')).rejects.toThrow(/dtype I64 cannot be read as float32/);
    await expect(s.readFloat32('nope')).rejects.toThrow(/no tensor 'nope'/);
    await s.close();
    await expect(s.readFloat32('a.bias')).rejects.toThrow(/after close/);
  });

  it('converts every F16 bit pattern exactly (checked against @petamoriken/float16)', async () => {
    const p = await writeTmp(
      'f16.safetensors',
      encodeSafetensors([{ key: 'h', dtype: 'F16', shape: [256, 256], bytes: u16Bytes(allBits) }]),
    );
    const s = await openSafetensors(p);
    const got = await s.readFloat32('h');
    await s.close();
    const dv = new DataView(u16Bytes(allBits).buffer);
    let bad = -1;
    for (let i = 0; i < 65536; i++) {
      const want = getFloat16(dv, i * 2, true);
      const ok = Number.isNaN(want) ? Number.isNaN(got[i]!) : Object.is(got[i], want);
      if (!ok && bad < 0) bad = i;
    }
    expect(bad, `first mismatch at bits 0x${bad.toString(16)}`).toBe(-1);
  });

  it('converts every BF16 bit pattern exactly (the upper half of a float32)', async () => {
    const p = await writeTmp(
      'bf16.safetensors',
      encodeSafetensors([{ key: 'b', dtype: 'BF16', shape: [65536], bytes: u16Bytes(allBits) }]),
    );
    const s = await openSafetensors(p);
    const got = new Uint32Array((await s.readFloat32('b')).buffer);
    await s.close();
    expect(Array.from(got)).toEqual(Array.from(allBits, (h) => (h << 16) >>> 0));
  });

  it('rounds F64 to float32 as torch does, and round-trips F16/BF16 test values', async () => {
    const vals = [0.1, 1 / 3, -2.5, 1e-40, 1e39, -0, 65504, 3.4028235677973366e38];
    const p = await writeTmp(
      'mixed.safetensors',
      encodeSafetensors([
        { key: 'd', dtype: 'F64', shape: [vals.length], bytes: f64Bytes(vals) },
        { key: 'h', dtype: 'F16', shape: [4], bytes: f16Bytes([0.5, -1.25, 65504, 2 ** -24]) },
        { key: 'b', dtype: 'BF16', shape: [2, 2], bytes: bf16Bytes([1, -2, 0.5, 256]) },
      ]),
    );
    const s = await openSafetensors(p);
    const d = await s.readFloat32('d');
    vals.forEach((v, i) => expect(Object.is(d[i], Math.fround(v)), `F64[${i}]`).toBe(true));
    expect(Array.from(await s.readFloat32('h'))).toEqual([0.5, -1.25, 65504, 2 ** -24]);
    expect(Array.from(await s.readFloat32('b'))).toEqual([1, -2, 0.5, 256]);
    await s.close();
  });

  it('reads large F16 tensors across conversion chunks', async () => {
    const n = (1 << 22) + 1000; // > one 4 Mi-element chunk
    const bits = Uint16Array.from({ length: n }, (_, i) => (i * 7919) & 0x7bff);
    const p = await writeTmp('big16.safetensors', encodeSafetensors([{ key: 'x', dtype: 'F16', shape: [n], bytes: u16Bytes(bits) }]));
    const s = await openSafetensors(p);
    const got = await s.readFloat32('x');
    await s.close();
    const dv = new DataView(bits.buffer);
    for (const i of [0, 1, (1 << 22) - 1, 1 << 22, n - 1]) expect(got[i]).toBe(getFloat16(dv, i * 2, true));
  });

  it('reads a tensor stored past 4 GiB (sparse file, positional reads)', async () => {
    const pad = 2_500_000_000; // BF16 elements = 5 GB
    const header = {
      pad: { dtype: 'BF16', shape: [pad], data_offsets: [0, pad * 2] },
      w: { dtype: 'F32', shape: [4], data_offsets: [pad * 2, pad * 2 + 16] },
    };
    const head = rawSafetensors(header, new Uint8Array(0));
    const p = join(dir, 'huge.safetensors');
    const fh = await open(p, 'w');
    await fh.write(head, 0, head.length, 0);
    await fh.write(f32Bytes([1, 2, 3, 4]), 0, 16, head.length + pad * 2);
    await fh.close();
    const s = await openSafetensors(p);
    expect(Array.from(await s.readFloat32('w'))).toEqual([1, 2, 3, 4]);
    expect(s.info('pad')?.shape).toEqual([pad]);
    await s.close();
    await rm(p);
  });
});

describe('openSafetensors: validation before allocation', () => {
  const okTensor = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('refuses a file shorter than the length field, and a truncated file', async () => {
    await expectRefused('tiny.safetensors', new Uint8Array(5), /at least 8/);
    const good = encodeSafetensors([{ key: 'w', dtype: 'F32', shape: [4], bytes: f32Bytes([1, 2, 3, 4]) }]);
    await expectRefused('cut.safetensors', good.subarray(0, good.length - 3), /'w'.*run past the data region of 13 bytes/);
    await expectRefused('cut-header.safetensors', good.subarray(0, 20), /header length \d+ exceeds the 12 bytes/);
  });

  it('refuses a header length over 100 MB or over the file size', async () => {
    await expectRefused(
      'hlen.safetensors',
      rawSafetensors({ w: okTensor }, new Uint8Array(8), 2n ** 40n),
      /header length 1099511627776 exceeds the 100000000-byte limit/,
    );
    await expectRefused(
      'hlen2.safetensors',
      rawSafetensors({ w: okTensor }, new Uint8Array(8), 5000n),
      /header length 5000 exceeds the \d+ bytes after the length field/,
    );
  });

  it('refuses a header that is not a JSON object', async () => {
    await expectRefused('json.safetensors', rawSafetensors([1, 2], new Uint8Array(0)), /must be a JSON object/);
    const bad = rawSafetensors({}, new Uint8Array(0));
    bad.set(new TextEncoder().encode('{"a":'), 8);
    await expectRefused('json2.safetensors', bad, /not valid UTF-8 JSON/);
  });

  it('refuses offsets past the end of the data', async () => {
    await expectRefused(
      'past.safetensors',
      rawSafetensors({ w: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, new Uint8Array(16)),
      /'w': data_offsets \[8, 24\] run past the data region of 16 bytes/,
    );
  });

  it('refuses a byte length that does not match shape × itemsize', async () => {
    await expectRefused(
      'len.safetensors',
      rawSafetensors({ w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /hold 8 bytes, expected 6 \(F16 \[3\]\)/,
    );
  });

  it('refuses overlapping tensors', async () => {
    const header = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
      empty: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
    };
    await expectRefused('overlap.safetensors', rawSafetensors(header, new Uint8Array(16)), /'a' \[0, 16\] and 'b' \[8, 16\] overlap/);
  });

  it('refuses 10^12 elements before allocating anything', async () => {
    const header = { huge: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4e12] } };
    await expectRefused(
      '1e12.safetensors',
      rawSafetensors(header, new Uint8Array(16)),
      /'huge': shape \[1000000, 1000000\] has 1000000000000 elements; at most 4294967295/,
    );
  });

  it('refuses an unknown dtype, a bad shape and bad offsets', async () => {
    await expectRefused(
      'dtype.safetensors',
      rawSafetensors({ w: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /unknown dtype "F8_E4M3" \(expected one of F32, F16/,
    );
    await expectRefused(
      'shape.safetensors',
      rawSafetensors({ w: { dtype: 'U8', shape: [2, -1], data_offsets: [0, 0] } }, new Uint8Array(0)),
      /shape\[1\] must be a non-negative integer, got -1/,
    );
    await expectRefused(
      'shape2.safetensors',
      rawSafetensors({ w: { dtype: 'U8', shape: [1.5], data_offsets: [0, 0] } }, new Uint8Array(0)),
      /shape\[0\] must be a non-negative integer/,
    );
    await expectRefused(
      'offs.safetensors',
      rawSafetensors({ w: { dtype: 'U8', shape: [2], data_offsets: [2, 0] } }, new Uint8Array(2)),
      /0 ≤ begin ≤ end/,
    );
    await expectRefused(
      'offs2.safetensors',
      rawSafetensors({ w: { dtype: 'U8', shape: [2], data_offsets: [0] } }, new Uint8Array(2)),
      /must be \[begin, end\]/,
    );
    await expectRefused('meta.safetensors', rawSafetensors({ __metadata__: 3 }, new Uint8Array(0)), /__metadata__ must be an object/);
  });
});

describe('openSafetensorsIndex', () => {
  async function writeShards(sub: string, weightMap: Record<string, string>): Promise<string> {
    const d = join(dir, sub);
    await rm(d, { recursive: true, force: true });
    await mkdir(d);
    await writeFile(
      join(d, 'model-00001-of-00002.safetensors'),
      encodeSafetensors([
        { key: 'a', dtype: 'F32', shape: [2], bytes: f32Bytes([1, 2]) },
        { key: 'c', dtype: 'BF16', shape: [1], bytes: bf16Bytes([3]) },
      ]),
    );
    await writeFile(
      join(d, 'model-00002-of-00002.safetensors'),
      encodeSafetensors([{ key: 'b', dtype: 'F16', shape: [2, 1], bytes: f16Bytes([4, 5]) }]),
    );
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 14 }, weight_map: weightMap }));
    return d;
  }
  const map = { a: 'model-00001-of-00002.safetensors', c: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' };

  it('reads tensors from every shard', async () => {
    const d = await writeShards('sharded', map);
    for (const path of [d, join(d, 'model.safetensors.index.json')]) {
      const s = await openSafetensorsIndex(path);
      expect(s.keys()).toEqual(['a', 'b', 'c']);
      expect(s.info('b')).toEqual({ key: 'b', dtype: 'F16', shape: [2, 1] });
      expect(Array.from(await s.readFloat32('a'))).toEqual([1, 2]);
      expect(Array.from(await s.readFloat32('b'))).toEqual([4, 5]);
      expect(Array.from(await s.readFloat32('c'))).toEqual([3]);
      await expect(s.readFloat32('d')).rejects.toThrow(/no tensor 'd'/);
      await s.close();
    }
  });

  it('refuses a weight_map that names the wrong shard, escapes the directory, or is missing', async () => {
    const d = await writeShards('sharded-bad', { ...map, b: 'model-00001-of-00002.safetensors' });
    await expect(openSafetensorsIndex(d)).rejects.toThrow(
      /weight_map says 'b' is in model-00001-of-00002.safetensors, but that file has no such tensor/,
    );
    const d1 = await writeShards('sharded-moved', { ...map, a: 'model-00002-of-00002.safetensors' });
    await expect(openSafetensorsIndex(d1)).rejects.toThrow(/'a' is in model-00002-of-00002.safetensors, but it is in model-00001/);
    const d2 = await writeShards('sharded-escape', { ...map, a: '../model-00001-of-00002.safetensors' });
    await expect(openSafetensorsIndex(d2)).rejects.toThrow(/weight_map\['a'\] must be a file name in the same directory/);
    const d3 = await writeShards('sharded-missing', { ...map, z: 'model-00002-of-00002.safetensors' });
    await expect(openSafetensorsIndex(d3)).rejects.toThrow(/'z' is in model-00002-of-00002.safetensors, but that file has no such tensor/);
    await writeFile(join(d3, 'model.safetensors.index.json'), '{"weight_map": 3}');
    await expect(openSafetensorsIndex(d3)).rejects.toThrow(/"weight_map" object/);
    await expect(openSafetensorsIndex(join(dir, 'nowhere'))).rejects.toThrow(CheckpointError);
  });

  it('refuses a key present in two shards', async () => {
    const d = await writeShards('sharded-dup', map);
    await writeFile(
      join(d, 'model-00002-of-00002.safetensors'),
      encodeSafetensors([{ key: 'a', dtype: 'F32', shape: [1], bytes: f32Bytes([9]) }]),
    );
    await truncate(join(d, 'model-00002-of-00002.safetensors'));
    await expect(openSafetensorsIndex(d)).rejects.toThrow(/at least 8/);
    await writeFile(
      join(d, 'model-00002-of-00002.safetensors'),
      encodeSafetensors([{ key: 'a', dtype: 'F32', shape: [1], bytes: f32Bytes([9]) }]),
    );
    await expect(openSafetensorsIndex(d)).rejects.toThrow(/'a' is in two shards/);
  });
});
