/**
 * Test helpers that write what `torch.save(state_dict, f)` writes (torch ≥ 1.6, pickle protocol 2):
 * a zip made by PyTorchStreamWriter (miniz) — local headers with flags 0x0808 and zero sizes, an
 * 'FB' extra field padding each entry's data to 64 bytes, a data descriptor after the data, a zip64
 * end record always — holding `<archive>/data.pkl` and the raw storages `<archive>/data/<key>`.
 * The pickle follows CPython's Pickler (memo puts, SETITEMS batches of 1000). Not used by library code.
 */
import { open } from 'node:fs/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import { concatBytes } from './checkpoint-bytes.js';

/** Emits pickle opcodes; `put` memoizes the value just written, like CPython's `memoize`. */
export class PickleWriter {
  private readonly bytes: number[] = [];
  private memoSize = 0;
  private readonly memo = new Map<string, number>();

  raw(...b: number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  private u32(n: number): void {
    this.raw(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  put(): this {
    const i = this.memoSize++;
    if (i < 256)
      this.raw(0x71, i); // BINPUT
    else {
      this.raw(0x72); // LONG_BINPUT
      this.u32(i);
    }
    return this;
  }
  /** Write a memoized value once; later uses of the same `id` become BINGET / LONG_BINGET. */
  once(id: string, write: () => void): this {
    const i = this.memo.get(id);
    if (i === undefined) {
      write();
      this.memo.set(id, this.memoSize);
      return this.put();
    }
    if (i < 256) return this.raw(0x68, i);
    this.raw(0x6a);
    this.u32(i);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.raw(0x58); // BINUNICODE
    this.u32(b.length);
    return this.raw(...b);
  }
  /** CPython `save_long` for protocol 2. */
  int(n: number | bigint): this {
    const v = BigInt(n);
    if (v >= 0n && v <= 0xffn) return this.raw(0x4b, Number(v));
    if (v >= 0n && v <= 0xffffn) return this.raw(0x4d, Number(v) & 0xff, Number(v) >> 8);
    if (v >= -(2n ** 31n) && v < 2n ** 31n) {
      this.raw(0x4a);
      this.u32(Number(BigInt.asUintN(32, v)));
      return this;
    }
    const out: number[] = [];
    let x = v;
    for (;;) {
      out.push(Number(BigInt.asUintN(8, x)));
      x >>= 8n;
      if ((x === 0n && !(out.at(-1)! & 0x80)) || (x === -1n && out.at(-1)! & 0x80)) break;
    }
    return this.raw(0x8a, out.length, ...out); // LONG1
  }
  global(module: string, name: string): this {
    return this.once(`global:${module}.${name}`, () => this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)));
  }
  /** A tuple of ints as CPython writes it (EMPTY_TUPLE, TUPLE1-3, or MARK … TUPLE), memoized. */
  intTuple(xs: readonly number[]): this {
    if (xs.length === 0) return this.raw(0x29);
    if (xs.length <= 3) {
      for (const x of xs) this.int(x);
      return this.raw(0x84 + xs.length).put();
    }
    this.raw(0x28);
    for (const x of xs) this.int(x);
    return this.raw(0x74).put();
  }
  done(): Uint8Array {
    return Uint8Array.from([...this.bytes, 0x2e]); // STOP
  }
}

export interface TorchTensorSpec {
  readonly key: string;
  /** Storage key: the zip entry `data/<storage>`; tensors with the same key share the storage. */
  readonly storage: string;
  readonly storageType?: string; // default FloatStorage
  readonly numel: number; // storage elements
  readonly offset?: number;
  readonly size: readonly number[];
  /** Default: contiguous. */
  readonly stride?: readonly number[];
}

export const contiguousStride = (size: readonly number[]): number[] => size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));

export interface StateDictOptions {
  /** OrderedDict (model.state_dict()) instead of a plain dict. */
  readonly ordered?: boolean;
  /** Add the OrderedDict's `_metadata` attribute (written with BUILD), as state_dict() has. */
  readonly metadata?: boolean;
  /** Wrap each tensor in `_rebuild_parameter` (saving nn.Parameters). */
  readonly parameter?: boolean;
}

/** data.pkl of `torch.save(state_dict)`. */
export function torchStateDictPickle(tensors: readonly TorchTensorSpec[], opts: StateDictOptions = {}): Uint8Array {
  const w = new PickleWriter().raw(0x80, 2); // PROTO 2
  const emptyOrderedDict = (): void => {
    w.global('collections', 'OrderedDict').raw(0x29, 0x52).put(); // () REDUCE
  };
  if (opts.ordered) emptyOrderedDict();
  else w.raw(0x7d).put(); // EMPTY_DICT
  for (let b = 0; b < tensors.length; b += 1000) {
    const batch = tensors.slice(b, b + 1000);
    if (batch.length > 1) w.raw(0x28); // MARK
    for (const t of batch) {
      w.str(t.key).put();
      if (opts.parameter) w.global('torch._utils', '_rebuild_parameter');
      w.global('torch._utils', '_rebuild_tensor_v2').raw(0x28); // MARK (args)
      w.raw(0x28) // persistent id ('storage', type, key, location, numel)
        .once('str:storage', () => w.str('storage'))
        .global('torch', t.storageType ?? 'FloatStorage')
        .once(`key:${t.storage}`, () => w.str(t.storage))
        .once('str:cpu', () => w.str('cpu'))
        .int(t.numel)
        .raw(0x74)
        .put()
        .raw(0x51); // TUPLE BINPERSID
      w.int(t.offset ?? 0)
        .intTuple(t.size)
        .intTuple(t.stride ?? contiguousStride(t.size))
        .raw(0x89); // requires_grad False
      emptyOrderedDict(); // backward_hooks
      w.raw(0x74).put().raw(0x52).put(); // TUPLE REDUCE
      if (opts.parameter) {
        w.raw(0x89); // (tensor, requires_grad False, OrderedDict()) TUPLE3 REDUCE
        emptyOrderedDict();
        w.raw(0x87).put().raw(0x52).put();
      }
    }
    w.raw(batch.length > 1 ? 0x75 : 0x73); // SETITEMS / SETITEM
  }
  if (opts.ordered && opts.metadata) {
    w.raw(0x7d).put().str('_metadata').put(); // {'_metadata': OrderedDict({'': {'version': 1}})}
    emptyOrderedDict();
    w.str('').put().raw(0x7d).put().str('version').put().int(1).raw(0x73).raw(0x73);
    w.raw(0x73, 0x62); // SETITEM BUILD
  }
  return w.done();
}

export interface ZipSpecEntry {
  readonly name: string;
  readonly data?: Uint8Array;
  /** An entry of this many zero bytes that are never written (a sparse file); CRC left 0. */
  readonly sparseSize?: number;
  readonly deflate?: boolean;
}

const le = (n: number, bytes: number): number[] => {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < bytes; i++, v >>= 8n) out.push(Number(v & 0xffn));
  return out;
};
const MAX32 = 0xffffffff;

/** Write a zip as torch's PyTorchStreamWriter does. `forceZip64` puts every size/offset in zip64 extras. */
export async function writeTorchZip(path: string, entries: readonly ZipSpecEntry[], forceZip64 = false): Promise<void> {
  const fh = await open(path, 'w');
  try {
    let pos = 0;
    const write = async (b: Uint8Array | number[]): Promise<void> => {
      const u = b instanceof Uint8Array ? b : Uint8Array.from(b);
      await fh.write(u, 0, u.length, pos);
      pos += u.length;
    };
    const central: Uint8Array[] = [];
    for (const e of entries) {
      const name = new TextEncoder().encode(e.name);
      const stored = e.data ?? new Uint8Array(0);
      const data = e.deflate ? deflateRawSync(stored) : stored;
      const size = e.sparseSize ?? data.length;
      const usize = e.sparseSize ?? stored.length;
      const crc = e.sparseSize === undefined ? crc32(stored) >>> 0 : 0;
      const offset = pos;
      const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
      const flags = [0x08, 0x08];
      const method = e.deflate ? 8 : 0;
      await write([0x50, 0x4b, 3, 4, 0, 0, ...flags, ...le(method, 2), ...le(0, 16), ...le(name.length, 2), ...le(4 + pad, 2)]);
      await write(concatBytes([name, Uint8Array.from([0x46, 0x42, ...le(pad, 2)]), new Uint8Array(pad).fill(0x5a)]));
      if (e.sparseSize === undefined) await write(data);
      else pos += size;
      const big = forceZip64 || size >= MAX32 || usize >= MAX32 || offset >= MAX32;
      await write([0x50, 0x4b, 7, 8, ...le(crc, 4), ...le(size, big ? 8 : 4), ...le(usize, big ? 8 : 4)]);
      const extra = big ? [1, 0, 24, 0, ...le(usize, 8), ...le(size, 8), ...le(offset, 8)] : [];
      const sat = (n: number): number => (big ? MAX32 : n);
      central.push(
        Uint8Array.from([
          0x50,
          0x4b,
          1,
          2,
          0,
          0,
          0,
          0,
          ...flags,
          ...le(method, 2),
          0,
          0,
          0,
          0,
          ...le(crc, 4),
          ...le(sat(size), 4),
          ...le(sat(usize), 4),
          ...le(name.length, 2),
          ...le(extra.length, 2),
          ...le(0, 10),
          ...le(sat(offset), 4),
          ...name,
          ...extra,
        ]),
      );
    }
    const cd = concatBytes(central);
    const cdOffset = pos;
    await write(cd);
    const z64At = pos;
    const n = entries.length;
    await write([
      0x50,
      0x4b,
      6,
      6,
      ...le(44, 8),
      0x1e,
      3,
      0x2d,
      0,
      ...le(0, 8),
      ...le(n, 8),
      ...le(n, 8),
      ...le(cd.length, 8),
      ...le(cdOffset, 8),
    ]);
    await write([0x50, 0x4b, 6, 7, ...le(0, 4), ...le(z64At, 8), ...le(1, 4)]);
    const sat = (v: number, max: number): number => Math.min(v, max);
    await write([
      0x50,
      0x4b,
      5,
      6,
      0,
      0,
      0,
      0,
      ...le(sat(n, 0xffff), 2),
      ...le(sat(n, 0xffff), 2),
      ...le(sat(cd.length, MAX32), 4),
      ...le(sat(cdOffset, MAX32), 4),
      0,
      0,
    ]);
  } finally {
    await fh.close();
  }
}

export interface TorchCheckpointSpec {
  readonly tensors: readonly TorchTensorSpec[];
  /** Storage bytes by key. */
  readonly storages: Readonly<Record<string, Uint8Array>>;
  readonly archive?: string; // default 'archive'
  readonly pickle?: Uint8Array; // replaces the generated data.pkl
  readonly options?: StateDictOptions;
  readonly forceZip64?: boolean;
  readonly deflatePickle?: boolean;
  /** Entries written before the storages (e.g. a sparse multi-GiB filler). */
  readonly before?: readonly ZipSpecEntry[];
}

/** Write a whole torch.save-style checkpoint file. */
export async function writeTorchCheckpoint(path: string, spec: TorchCheckpointSpec): Promise<void> {
  const a = spec.archive ?? 'archive';
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  await writeTorchZip(
    path,
    [
      { name: `${a}/data.pkl`, data: spec.pickle ?? torchStateDictPickle(spec.tensors, spec.options), deflate: spec.deflatePickle },
      { name: `${a}/.format_version`, data: text('1') },
      { name: `${a}/.storage_alignment`, data: text('64') },
      { name: `${a}/byteorder`, data: text('little') },
      ...(spec.before ?? []),
      ...Object.entries(spec.storages).map(([k, data]) => ({ name: `${a}/data/${k}`, data })),
      { name: `${a}/version`, data: text('3\n') },
      { name: `${a}/.data/serialization_id`, data: text('0123456789012345678901234567890123456789') },
    ],
    spec.forceZip64,
  );
}
