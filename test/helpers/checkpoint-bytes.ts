/**
 * Test helpers: build small checkpoints in memory (safetensors here; torch.save zips in
 * torch-checkpoint.ts). Not used by library code.
 */
import { setFloat16 } from '@petamoriken/float16';
import type { CkptDType } from '../../src/export/checkpoint/types.js';
import { DTYPE_BYTES } from '../../src/export/checkpoint/tensor-bytes.js';

export interface TestTensor {
  readonly key: string;
  readonly dtype: CkptDType;
  readonly shape: readonly number[];
  /** Raw little-endian bytes (length = elements × itemsize). */
  readonly bytes: Uint8Array;
}

export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

export function f64Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

/** Round each value to the nearest half (IEEE binary16). */
export function f16Bytes(values: ArrayLike<number>): Uint8Array {
  const dv = new DataView(new ArrayBuffer(values.length * 2));
  for (let i = 0; i < values.length; i++) setFloat16(dv, i * 2, values[i]!, true);
  return new Uint8Array(dv.buffer);
}

/** bfloat16 by truncating float32 (the upper 16 bits). */
export function bf16Bytes(values: ArrayLike<number>): Uint8Array {
  const u32 = new Uint32Array(Float32Array.from(values).buffer);
  return new Uint8Array(Uint16Array.from(u32, (u) => u >>> 16).buffer);
}

/** Bytes of 16-bit patterns (for F16 / BF16 tensors given bit by bit). */
export function u16Bytes(bits: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Uint16Array.from(bits).buffer);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A safetensors file whose header is given as is (for malformed files). `headerLength` overrides
 * the 8-byte length field; the JSON is padded with spaces to a multiple of 8, as the reference does.
 */
export function rawSafetensors(header: unknown, data: Uint8Array, headerLength?: bigint): Uint8Array {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, headerLength ?? BigInt(h.length), true);
  return concatBytes([len, h, data]);
}

/** A well-formed safetensors file: tensors packed in order, as `safetensors.torch.save_file` does. */
export function encodeSafetensors(tensors: readonly TestTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let at = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.bytes.length !== n * DTYPE_BYTES[t.dtype]) {
      throw new RangeError(`tensor ${t.key}: ${t.bytes.length} bytes for ${t.dtype} [${t.shape.join(', ')}]`);
    }
    header[t.key] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  return rawSafetensors(header, concatBytes(tensors.map((t) => t.bytes)));
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32). */
export function seededFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}
