/**
 * Saving a recurrent state to bytes and loading it back (prefix reuse, checkpoints of a chat).
 *
 * Layout, little-endian:
 *
 *   offset  size  field
 *   0       4     magic "M2ST"
 *   4       4     u32 format version (1)
 *   8       4     u32 header length H
 *   12      H     header, UTF-8 JSON: {"batch": B, "tensors": [{"name": "past_conv.0", "dims": [B, C, K-1]}, …]}
 *   …       0-3   zero padding to a multiple of 4
 *   …       4·Σ   float32 data of each tensor, in header order (fp16 states are widened)
 *   end-4   4     u32 CRC-32 (IEEE) of every byte before it
 *
 * Loading validates all of it: a truncated, bit-flipped or foreign file is a StateFormatError.
 */
import type { HostState } from './state.js';

export const STATE_MAGIC = 'M2ST';
export const STATE_FORMAT_VERSION = 1;
const FIXED = 12;
const MAX_HEADER = 1 << 20;

export class StateFormatError extends Error {
  override readonly name = 'StateFormatError';
  constructor(detail: string) {
    super(`not a valid mamba2-onnx state: ${detail}`);
  }
}

let crcTable: Uint32Array | undefined;
/** CRC-32 (IEEE 802.3, as in zlib). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes of a host state (see the layout above). */
export function serializeState(state: HostState): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ batch: state.batch, tensors: state.tensors.map((t) => ({ name: t.name, dims: [...t.dims] })) }),
  );
  const dataStart = FIXED + header.length + pad4(header.length);
  const floats = state.tensors.reduce((a, t) => a + t.data.length, 0);
  const out = new Uint8Array(dataStart + floats * 4 + 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(STATE_MAGIC), 0);
  view.setUint32(4, STATE_FORMAT_VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, FIXED);
  let off = dataStart;
  for (const t of state.tensors) {
    if (LITTLE_ENDIAN) {
      new Float32Array(out.buffer, off, t.data.length).set(t.data); // dataStart is 4-aligned
      off += t.data.length * 4;
    } else {
      for (let i = 0; i < t.data.length; i++, off += 4) view.setFloat32(off, t.data[i]!, true);
    }
  }
  view.setUint32(off, crc32(out.subarray(0, off)), true);
  return out;
}

/** Parse and validate bytes written by serializeState. */
export function deserializeState(bytes: Uint8Array): HostState {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`deserializeState: bytes expected a Uint8Array, got ${typeof bytes}`);
  if (bytes.length < FIXED + 4) throw new StateFormatError(`expected at least ${FIXED + 4} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== STATE_MAGIC) throw new StateFormatError(`magic expected "${STATE_MAGIC}", got ${JSON.stringify(magic)}`);
  const version = view.getUint32(4, true);
  if (version !== STATE_FORMAT_VERSION) {
    throw new StateFormatError(`format version expected ${STATE_FORMAT_VERSION}, got ${version} (written by a different mamba2-onnx?)`);
  }
  const crcAt = bytes.length - 4;
  const crc = crc32(bytes.subarray(0, crcAt));
  if (crc !== view.getUint32(crcAt, true)) {
    throw new StateFormatError(
      `checksum mismatch (stored ${view.getUint32(crcAt, true).toString(16)}, computed ${crc.toString(16)}): the bytes are corrupted or truncated`,
    );
  }
  const headerLen = view.getUint32(8, true);
  if (headerLen > MAX_HEADER || FIXED + headerLen > crcAt)
    throw new StateFormatError(`header length ${headerLen} does not fit in ${bytes.length} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED, FIXED + headerLen)));
  } catch (e) {
    throw new StateFormatError(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const { batch, entries } = checkHeader(header);
  const dataStart = FIXED + headerLen + pad4(headerLen);
  const floats = entries.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1), 0);
  if (dataStart + floats * 4 !== crcAt) {
    throw new StateFormatError(`expected ${floats} float32 values (${dataStart + floats * 4 + 4} bytes in all), got ${bytes.length} bytes`);
  }
  let off = dataStart;
  const tensors = entries.map((t) => {
    const n = t.dims.reduce((x, y) => x * y, 1);
    let data: Float32Array;
    if (LITTLE_ENDIAN) {
      data = new Float32Array(bytes.slice(off, off + n * 4).buffer); // slice: the input may be unaligned
      off += n * 4;
    } else {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++, off += 4) data[i] = view.getFloat32(off, true);
    }
    return { name: t.name, dims: t.dims, data };
  });
  return { batch, tensors };
}

function checkHeader(h: unknown): { batch: number; entries: { name: string; dims: number[] }[] } {
  const isDim = (d: unknown): d is number => typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= 2 ** 31;
  const isSize = (d: unknown): d is number => d === 0 || isDim(d); // an empty KV cache has a 0 dim
  if (typeof h !== 'object' || h === null) throw new StateFormatError('header expected a JSON object');
  const { batch, tensors } = h as { batch?: unknown; tensors?: unknown };
  if (!isDim(batch)) throw new StateFormatError(`header.batch expected an integer ≥ 1, got ${JSON.stringify(batch)}`);
  if (!Array.isArray(tensors) || tensors.length === 0) throw new StateFormatError('header.tensors expected a non-empty array');
  const entries = tensors.map((t: unknown, i) => {
    const { name, dims } = (t ?? {}) as { name?: unknown; dims?: unknown };
    if (typeof name !== 'string' || name === '')
      throw new StateFormatError(`header.tensors[${i}].name expected a string, got ${JSON.stringify(name)}`);
    if (!Array.isArray(dims) || dims.length < 2 || !isDim(dims[0]) || !dims.slice(1).every(isSize)) {
      throw new StateFormatError(`header.tensors[${i}].dims expected ≥ 2 integers (batch ≥ 1, the rest ≥ 0), got ${JSON.stringify(dims)}`);
    }
    if (dims[0] !== batch) throw new StateFormatError(`tensor '${name}': leading dim expected batch = ${batch}, got ${dims[0]}`);
    return { name, dims: dims as number[] };
  });
  return { batch, entries };
}
