/**
 * Shared by the checkpoint readers: dtype sizes, bounded element counts, positional reads through a
 * file handle (files over 2 GiB work; nothing reads a whole file) and the conversion of F16 / BF16 /
 * F64 bytes to float32, done chunk by chunk so that a tensor is never held twice in full.
 */
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { CheckpointError, type CkptDType } from './types.js';

export const DTYPE_BYTES: Readonly<Record<CkptDType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const CKPT_DTYPES: readonly CkptDType[] = Object.keys(DTYPE_BYTES) as CkptDType[];

export function isCkptDType(s: unknown): s is CkptDType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

/** The most elements one tensor may have: the longest Float32Array V8 allows (2^32 − 1). */
export const MAX_TENSOR_ELEMENTS = 2 ** 32 - 1;

/** Largest single `read` (Node refuses reads over 2 GiB − 1). */
const READ_CHUNK_BYTES = 1 << 30;
/** Elements converted per chunk for F16 / BF16 / F64 (scratch of at most 32 MiB). */
const CONVERT_CHUNK_ELEMENTS = 1 << 22;

/**
 * Number of elements of `shape`: every dim a non-negative safe integer, the product at most
 * MAX_TENSOR_ELEMENTS. Checked before anything is allocated. `what` names the tensor in errors.
 */
export function elementCount(shape: readonly unknown[], path: string, what: string): number {
  for (const [i, d] of shape.entries()) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new CheckpointError(path, `${what}: shape[${i}] must be a non-negative integer, got ${String(d)}`);
    }
  }
  const dims = shape as readonly number[];
  if (dims.includes(0)) return 0;
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > MAX_TENSOR_ELEMENTS) {
      throw new CheckpointError(
        path,
        `${what}: shape [${dims.join(', ')}] has ${dims.reduce((a, b) => a * b, 1)} elements; ` +
          `at most ${MAX_TENSOR_ELEMENTS} are supported (refused before allocating)`,
      );
    }
  }
  return n;
}

/** Fill `target` from `position`; a short file is a CheckpointError naming `what`. */
async function readInto(fh: FileHandle, path: string, target: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const len = Math.min(target.length - done, READ_CHUNK_BYTES);
    const { bytesRead } = await fh.read(target, done, len, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(
        path,
        `${what}: expected ${target.length} bytes at offset ${position}, the file ends after ${done} (truncated?)`,
      );
    }
    done += bytesRead;
  }
}

export async function readExact(fh: FileHandle, path: string, position: number, length: number, what: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await readInto(fh, path, buf, position, what);
  return buf;
}

export function isFloatDType(t: CkptDType): t is 'F32' | 'F16' | 'BF16' | 'F64' {
  return t === 'F32' || t === 'F16' || t === 'BF16' || t === 'F64';
}

let f16Table: Float32Array | undefined;

/** IEEE half bits → value; exact (every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man === 0 ? sign * Infinity : NaN;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = halfToFloat(h);
  }
  return f16Table;
}

/** Convert `n` little-endian elements of `src` (F16 / BF16 / F64) into `out[at..at+n)`. */
function convertChunk(dtype: 'F16' | 'BF16' | 'F64', src: ArrayBuffer, n: number, out: Float32Array, at: number): void {
  if (dtype === 'F16') {
    const t = halfTable();
    const s = new Uint16Array(src, 0, n);
    for (let i = 0; i < n; i++) out[at + i] = t[s[i]!]!;
  } else if (dtype === 'BF16') {
    // bfloat16 is the upper half of a float32.
    const s = new Uint16Array(src, 0, n);
    const o = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < n; i++) o[at + i] = s[i]! << 16;
  } else {
    const s = new Float64Array(src, 0, n);
    for (let i = 0; i < n; i++) out[at + i] = s[i]!; // rounds to nearest, as torch's .float()
  }
}

/**
 * Read `count` elements of `dtype` stored little-endian at byte `position` and return them as
 * float32. Integer dtypes are refused. `what` names the tensor in errors.
 */
export async function readAsFloat32(
  fh: FileHandle,
  path: string,
  what: string,
  dtype: CkptDType,
  position: number,
  count: number,
): Promise<Float32Array> {
  if (!isFloatDType(dtype)) {
    throw new CheckpointError(path, `${what}: dtype ${dtype} cannot be read as float32 (expected F32, F16, BF16 or F64)`);
  }
  if (count > MAX_TENSOR_ELEMENTS) {
    throw new CheckpointError(path, `${what}: ${count} elements, at most ${MAX_TENSOR_ELEMENTS} are supported`);
  }
  if (endianness() !== 'LE') {
    throw new CheckpointError(path, `${what}: checkpoints are little-endian and this host is big-endian (unsupported)`);
  }
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    await readInto(fh, path, new Uint8Array(out.buffer), position, what);
    return out;
  }
  const size = DTYPE_BYTES[dtype];
  const scratch = new ArrayBuffer(Math.min(count, CONVERT_CHUNK_ELEMENTS) * size);
  for (let at = 0; at < count; at += CONVERT_CHUNK_ELEMENTS) {
    const n = Math.min(CONVERT_CHUNK_ELEMENTS, count - at);
    await readInto(fh, path, new Uint8Array(scratch, 0, n * size), position + at * size, what);
    convertChunk(dtype, scratch, n, out, at);
  }
  return out;
}
