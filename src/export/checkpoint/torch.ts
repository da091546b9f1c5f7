/**
 * Reader for `torch.save` checkpoints (zip format, torch ≥ 1.6), e.g. mamba_ssm's `pytorch_model.bin`:
 *
 *   <prefix>/data.pkl      pickle of a dict of tensors; each tensor is
 *                          _rebuild_tensor_v2(BINPERSID ('storage', torch.FloatStorage, key, 'cpu', numel),
 *                                             storage_offset, size, stride, requires_grad, hooks)
 *   <prefix>/data/<key>    the storage's raw little-endian bytes (stored, 64-byte aligned)
 *   <prefix>/byteorder     'little' (absent in old files)
 *
 * The pickle goes through the allow-list unpickler; storages are read lazily at their zip offsets.
 * Tensors are views: several may share one storage (tied weights); non-contiguous strides are
 * materialised. Ref: pytorch torch/serialization.py (`_save`, `_load`), torch/_utils.py.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CheckpointError, type CkptDType, type TensorInfo, type TensorStore } from './types.js';
import { PyDict, PyGlobal, PyOpaque, PyTuple, unpickle, MAX_PICKLE_BYTES, type GlobalCall, type PickleValue } from './pickle.js';
import { ZipReader, METHOD_STORED, type ZipEntry } from './zip.js';
import { DTYPE_BYTES, MAX_TENSOR_ELEMENTS, elementCount, readAsFloat32, readExact } from './tensor-bytes.js';

/** torch's legacy storage classes (what `persistent_id` writes) and their element types. */
const STORAGE_DTYPES: Readonly<Record<string, CkptDType>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

class StorageRef extends PyOpaque {
  readonly typeName = 'torch storage';
  constructor(
    readonly key: string,
    readonly dtype: CkptDType,
    readonly numel: number,
  ) {
    super();
  }
}

class TensorView extends PyOpaque {
  readonly typeName = 'torch tensor';
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
}

function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (v instanceof PyOpaque) return v.typeName;
  if (v instanceof PyGlobal) return `global ${v.qualifiedName}`;
  return typeof v === 'object' ? v.constructor.name : typeof v;
}

function intArg(v: PickleValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new Error(`${what} must be a non-negative integer, got ${v === undefined ? 'nothing' : String(v)}`);
  }
  return v;
}

function intTuple(v: PickleValue | undefined, what: string): number[] {
  if (!(v instanceof PyTuple)) throw new Error(`${what} must be a tuple, got ${v === undefined ? 'nothing' : describe(v)}`);
  return v.items.map((x, i) => intArg(x, `${what}[${i}]`));
}

/** `_rebuild_tensor(storage, storage_offset, size, stride, ...)`; the rest (requires_grad, hooks) is ignored. */
function rebuildTensor(args: readonly PickleValue[], minArgs: number, maxArgs: number): TensorView {
  if (args.length < minArgs || args.length > maxArgs) throw new Error(`expected ${minArgs}–${maxArgs} arguments, got ${args.length}`);
  const storage = args[0];
  if (!(storage instanceof StorageRef)) throw new Error(`argument 0 must be a storage, got ${describe(storage ?? null)}`);
  const size = intTuple(args[2], 'size');
  const stride = intTuple(args[3], 'stride');
  if (size.length !== stride.length) throw new Error(`size has ${size.length} dims, stride ${stride.length}`);
  return new TensorView(storage, intArg(args[1], 'storage_offset'), size, stride);
}

function rebuildParameter(args: readonly PickleValue[]): PickleValue {
  if (!(args[0] instanceof TensorView)) throw new Error(`argument 0 must be a tensor, got ${describe(args[0] ?? null)}`);
  return args[0];
}

function torchGlobals(): Map<string, GlobalCall | undefined> {
  const g = new Map<string, GlobalCall | undefined>([
    [
      'collections.OrderedDict',
      (args) => {
        if (args.length !== 0) throw new Error(`expected no arguments, got ${args.length}`);
        return new PyDict();
      },
    ],
    ['torch._utils._rebuild_tensor', (args) => rebuildTensor(args, 4, 4)],
    ['torch._utils._rebuild_tensor_v2', (args) => rebuildTensor(args, 6, 7)],
    ['torch._utils._rebuild_parameter', rebuildParameter],
    ['torch._utils._rebuild_parameter_with_state', rebuildParameter],
  ]);
  for (const name of Object.keys(STORAGE_DTYPES)) g.set(`torch.${name}`, undefined);
  return g;
}

/** BINPERSID ('storage', storage_type, key, location, numel) → one StorageRef per key. */
function storageLoader(path: string, storages: Map<string, StorageRef>): (pid: PickleValue) => PickleValue {
  return (pid) => {
    const bad = (detail: string): never => {
      throw new CheckpointError(path, `data.pkl: persistent id ${detail}`);
    };
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      return bad(`must be ('storage', type, key, location, numel), got ${describe(pid)}`);
    }
    const [, type, key, , numel] = pid.items;
    const dtype = type instanceof PyGlobal && type.module === 'torch' ? STORAGE_DTYPES[type.name] : undefined;
    if (!dtype) return bad(`has storage type ${describe(type ?? null)} (expected torch.FloatStorage, torch.HalfStorage, …)`);
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key) || key.startsWith('.')) return bad(`has key ${JSON.stringify(key)}`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) return bad(`of '${key}' has numel ${String(numel)}`);
    const prev = storages.get(key);
    if (prev) {
      if (prev.dtype !== dtype || prev.numel !== numel) {
        return bad(`'${key}' is seen as ${prev.dtype}×${prev.numel} and as ${dtype}×${numel}`);
      }
      return prev;
    }
    const s = new StorageRef(key, dtype, numel);
    storages.set(key, s);
    return s;
  };
}

function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d]!;
  }
  return true;
}

/** Elements of a strided view, from `src` whose element 0 is the view's storage_offset. */
function gather(src: Float32Array, size: readonly number[], stride: readonly number[], count: number): Float32Array {
  const out = new Float32Array(count);
  const idx = new Array<number>(size.length).fill(0);
  let at = 0;
  for (let i = 0; i < count; i++) {
    out[i] = src[at]!;
    for (let d = size.length - 1; d >= 0; d--) {
      at += stride[d]!;
      if (++idx[d]! < size[d]!) break;
      at -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

interface Tensor {
  readonly view: TensorView;
  readonly entry: ZipEntry;
  readonly count: number;
  /** Elements from storage_offset to the last one the view touches (inclusive). */
  readonly span: number;
}

class TorchStore implements TensorStore {
  readonly kind = 'torch';
  private closed = false;
  private readonly sorted: string[];

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly zip: ZipReader,
    private readonly tensors: ReadonlyMap<string, Tensor>,
  ) {
    this.sorted = [...tensors.keys()].sort();
  }

  keys(): string[] {
    return [...this.sorted];
  }

  info(key: string): TensorInfo | undefined {
    const t = this.tensors.get(key);
    return t && { key, dtype: t.view.storage.dtype, shape: t.view.size };
  }

  async readFloat32(key: string): Promise<Float32Array> {
    if (this.closed) throw new CheckpointError(this.path, `readFloat32('${key}') after close()`);
    const t = this.tensors.get(key);
    if (!t) throw new CheckpointError(this.path, `no tensor '${key}' (${this.sorted.length} tensors present)`);
    const { storage, offset, size, stride } = t.view;
    const position = (await this.zip.dataOffset(t.entry)) + offset * DTYPE_BYTES[storage.dtype];
    const what = `tensor '${key}' (storage ${storage.key})`;
    if (t.count === 0 || isContiguous(size, stride)) {
      return readAsFloat32(this.fh, this.path, what, storage.dtype, position, t.count);
    }
    const src = await readAsFloat32(this.fh, this.path, what, storage.dtype, position, t.span);
    return gather(src, size, stride, t.count);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** Check each state-dict entry and resolve its storage's zip entry. */
function resolveTensors(path: string, root: PickleValue, zip: ZipReader, prefix: string): Map<string, Tensor> {
  if (!(root instanceof PyDict)) {
    throw new CheckpointError(path, `data.pkl holds ${describe(root)}, expected a dict of tensors (a state_dict)`);
  }
  const tensors = new Map<string, Tensor>();
  for (const [key, v] of root.map) {
    if (typeof key !== 'string') throw new CheckpointError(path, `state_dict key ${String(key)} is not a string`);
    if (!(v instanceof TensorView)) throw new CheckpointError(path, `state_dict['${key}'] is ${describe(v)}, expected a tensor`);
    const { storage: s, offset, size, stride } = v;
    const what = `tensor '${key}'`;
    const count = elementCount(size, path, what);
    let last = offset;
    for (let d = 0; d < size.length; d++) last += (size[d]! - 1) * stride[d]!;
    if (count > 0 && last >= s.numel) {
      throw new CheckpointError(
        path,
        `${what}: view (offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} of storage ${s.key}, which has ${s.numel}`,
      );
    }
    const span = count > 0 ? last - offset + 1 : 0;
    if (span > MAX_TENSOR_ELEMENTS)
      throw new CheckpointError(path, `${what}: strided view spans ${span} elements, at most ${MAX_TENSOR_ELEMENTS} are supported`);
    const entry = zip.entries.get(`${prefix}data/${s.key}`);
    if (!entry) throw new CheckpointError(path, `${what}: storage entry ${prefix}data/${s.key} is missing from the archive`);
    if (entry.method !== METHOD_STORED) {
      throw new CheckpointError(
        path,
        `${what}: storage ${entry.name} is compressed (method ${entry.method}); only stored entries can be read in place`,
      );
    }
    const bytes = s.numel * DTYPE_BYTES[s.dtype];
    if (entry.uncompressedSize < bytes) {
      throw new CheckpointError(
        path,
        `${what}: storage ${entry.name} has ${entry.uncompressedSize} bytes, expected ${bytes} (${s.dtype} × ${s.numel})`,
      );
    }
    tensors.set(key, { view: v, entry, count, span });
  }
  return tensors;
}

async function load(fh: FileHandle, path: string): Promise<TorchStore> {
  const { size } = await fh.stat();
  const magic = await readExact(fh, path, 0, Math.min(4, size), 'file magic');
  if (magic.length < 4 || magic[0] !== 0x50 || magic[1] !== 0x4b || magic[2] !== 0x03 || magic[3] !== 0x04) {
    const legacy = magic[0] === 0x80;
    throw new CheckpointError(
      path,
      legacy
        ? 'legacy torch.save format (before torch 1.6, or _use_new_zipfile_serialization=False) is not supported; re-save it with a current torch'
        : `not a torch.save zip archive (expected magic 50 4b 03 04, got ${[...magic].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
    );
  }
  const zip = await ZipReader.open(fh, path, size);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new CheckpointError(path, `expected one <prefix>/data.pkl in the archive, found ${pkls.length ? pkls.join(', ') : 'none'}`);
  }
  const pklName = pkls[0]!;
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const order = zip.entries.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(await zip.readEntry(order, 16));
    if (text !== 'little') throw new CheckpointError(path, `byteorder is '${text}', only 'little' is supported`);
  }
  const pickle = await zip.readEntry(zip.entries.get(pklName)!, MAX_PICKLE_BYTES);
  const storages = new Map<string, StorageRef>();
  const root = unpickle(pickle, { path, what: pklName, globals: torchGlobals(), persistentLoad: storageLoader(path, storages) });
  return new TorchStore(fh, path, zip, resolveTensors(path, root, zip, prefix));
}

/** Open a `torch.save` zip checkpoint; reads the directory and the pickle now, tensors on demand. */
export async function openTorchCheckpoint(path: string): Promise<TensorStore> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new CheckpointError(path, `cannot open: ${(err as Error).message}`);
  }
  try {
    return await load(fh, path);
  } catch (err) {
    await fh.close();
    throw err;
  }
}
