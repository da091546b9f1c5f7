/**
 * safetensors reader: `[u64 LE header length][JSON header][data]`, header entries
 * `{key: {dtype, shape, data_offsets: [begin, end]}}` relative to the data region, plus an optional
 * `__metadata__`. The header is validated in full before any tensor memory is allocated; tensors are
 * read one at a time at their offsets (positional reads, so files over 2 GiB work).
 * Sharded checkpoints: `model.safetensors.index.json` with `weight_map: {key: shard file}`.
 * Ref: huggingface/safetensors `safetensors/src/tensor.rs` (`validate`).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openShardedIndex } from './sharded.js';
import { CheckpointError, type TensorInfo, type TensorStore } from './types.js';
import { CKPT_DTYPES, DTYPE_BYTES, elementCount, isCkptDType, readAsFloat32, readExact } from './tensor-bytes.js';

/** Largest accepted JSON header (the limit of the reference implementation). */
const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

interface Entry extends TensorInfo {
  /** Byte range inside the data region. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: ReadonlyMap<string, Entry>;
  readonly metadata: Readonly<Record<string, string>>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validate a parsed header against a data region of `dataSize` bytes: known dtype, non-negative
 * integer shape, bounded element count, offsets inside the region, byte length = elements × itemsize,
 * no two tensors overlapping.
 */
export function validateSafetensorsHeader(header: unknown, dataSize: number, path: string): SafetensorsHeader {
  if (!isRecord(header)) throw new CheckpointError(path, 'safetensors header must be a JSON object');
  const entries = new Map<string, Entry>();
  const metadata: Record<string, string> = {};
  for (const [key, v] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isRecord(v)) throw new CheckpointError(path, `__metadata__ must be an object, got ${JSON.stringify(v)}`);
      for (const [mk, mv] of Object.entries(v)) metadata[mk] = String(mv);
      continue;
    }
    const what = `tensor '${key}'`;
    if (!isRecord(v)) throw new CheckpointError(path, `${what}: header entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = v;
    if (!isCkptDType(dtype)) {
      throw new CheckpointError(path, `${what}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${CKPT_DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape)) throw new CheckpointError(path, `${what}: shape must be an array, got ${JSON.stringify(shape)}`);
    const count = elementCount(shape, path, what);
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      throw new CheckpointError(path, `${what}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as unknown[];
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
      throw new CheckpointError(path, `${what}: data_offsets must be integers 0 ≤ begin ≤ end, got ${JSON.stringify(offsets)}`);
    }
    const b = begin as number;
    const e = end as number;
    if (e > dataSize) {
      throw new CheckpointError(path, `${what}: data_offsets [${b}, ${e}] run past the data region of ${dataSize} bytes (truncated file?)`);
    }
    const bytes = count * DTYPE_BYTES[dtype];
    if (e - b !== bytes) {
      throw new CheckpointError(
        path,
        `${what}: data_offsets [${b}, ${e}] hold ${e - b} bytes, expected ${bytes} (${dtype} [${shape.join(', ')}])`,
      );
    }
    entries.set(key, { key, dtype, shape: shape as number[], begin: b, end: e });
  }
  const spans = [...entries.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.begin < prev.end) {
      throw new CheckpointError(
        path,
        `tensors '${prev.key}' [${prev.begin}, ${prev.end}] and '${cur.key}' [${cur.begin}, ${cur.end}] overlap`,
      );
    }
  }
  return { entries, metadata };
}

/** Read and validate the header of an open safetensors file of `fileSize` bytes. */
async function readHeader(fh: FileHandle, path: string, fileSize: number): Promise<{ header: SafetensorsHeader; dataStart: number }> {
  if (fileSize < 8) throw new CheckpointError(path, `file has ${fileSize} bytes; a safetensors file has at least 8 (truncated?)`);
  const lenBytes = await readExact(fh, path, 0, 8, 'header length');
  const len64 = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (len64 > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    throw new CheckpointError(
      path,
      `header length ${len64} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit (not a safetensors file?)`,
    );
  }
  const len = Number(len64);
  if (len > fileSize - 8) {
    throw new CheckpointError(path, `header length ${len} exceeds the ${fileSize - 8} bytes after the length field (truncated file?)`);
  }
  const text = new TextDecoder('utf-8', { fatal: true });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.decode(await readExact(fh, path, 8, len, 'header')));
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(path, `header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  const dataStart = 8 + len;
  return { header: validateSafetensorsHeader(parsed, fileSize - dataStart, path), dataStart };
}

class SafetensorsStore implements TensorStore {
  readonly kind = 'safetensors';
  private closed = false;
  private readonly sorted: string[];

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly header: SafetensorsHeader,
    private readonly dataStart: number,
  ) {
    this.sorted = [...header.entries.keys()].sort();
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  keys(): string[] {
    return [...this.sorted];
  }

  info(key: string): TensorInfo | undefined {
    const e = this.header.entries.get(key);
    return e && { key: e.key, dtype: e.dtype, shape: e.shape };
  }

  async readFloat32(key: string): Promise<Float32Array> {
    if (this.closed) throw new CheckpointError(this.path, `readFloat32('${key}') after close()`);
    const e = this.header.entries.get(key);
    if (!e) throw new CheckpointError(this.path, `no tensor '${key}' (${this.sorted.length} tensors present)`);
    const count = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    return readAsFloat32(this.fh, this.path, `tensor '${key}'`, e.dtype, this.dataStart + e.begin, count);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** Open one `.safetensors` file; only the header is read now. */
export async function openSafetensors(path: string): Promise<TensorStore & { readonly metadata: Readonly<Record<string, string>> }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new CheckpointError(path, `cannot open: ${(err as Error).message}`);
  }
  try {
    const { size } = await fh.stat();
    const { header, dataStart } = await readHeader(fh, path, size);
    return new SafetensorsStore(fh, path, header, dataStart);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** A sharded checkpoint: `model.safetensors.index.json` and its shards. */
export async function openSafetensorsIndex(dirOrIndex: string): Promise<TensorStore> {
  const indexPath = dirOrIndex.endsWith('.json') ? dirOrIndex : join(dirOrIndex, SAFETENSORS_INDEX_FILE);
  return openShardedIndex(indexPath, openSafetensors);
}
