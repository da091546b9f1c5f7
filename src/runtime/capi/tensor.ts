/**
 * Tensors of the C-API backend. A host tensor is a JS typed array plus, once it is fed to a
 * session, an OrtValue made by CreateTensorWithDataAsOrtValue over that array's own memory (no
 * copy; the tensor holds the array for as long as the OrtValue lives). A device tensor is an
 * OrtValue whose data ORT allocated in device memory (CUDA, WebGPU); its host data comes through
 * the backend's download().
 *
 * dispose() releases the OrtValue (safe twice); a tensor dropped without dispose() has its OrtValue
 * released when it is garbage-collected.
 */
import type { EpName, RtTensor, TensorData, TensorLocation } from '../backend.js';
import { ORT_ENUM, type Ptr } from './api-table.js';
import type { OrtLib } from './ort-api.js';
import type { CapiEpOptions } from './providers.js';

type TypedArrayCtor = {
  new (n: number): ArrayBufferView & ArrayLike<number | bigint>;
  new (b: ArrayBuffer): ArrayBufferView & ArrayLike<number | bigint>;
  readonly BYTES_PER_ELEMENT: number;
};

/** ONNX element types that cross the boundary: ONNXTensorElementDataType value and host array. */
export const ELEMENT_TYPES: Readonly<Record<string, { onnx: number; array: TypedArrayCtor }>> = {
  float32: { onnx: 1, array: Float32Array },
  uint8: { onnx: 2, array: Uint8Array },
  int8: { onnx: 3, array: Int8Array },
  uint16: { onnx: 4, array: Uint16Array },
  int16: { onnx: 5, array: Int16Array },
  int32: { onnx: 6, array: Int32Array },
  int64: { onnx: 7, array: BigInt64Array },
  bool: { onnx: 9, array: Uint8Array },
  float16: { onnx: 10, array: Uint16Array },
  float64: { onnx: 11, array: Float64Array },
  uint32: { onnx: 12, array: Uint32Array },
  uint64: { onnx: 13, array: BigUint64Array },
};

/** The type name of an ONNX element type value ('float32', …), or `onnx type N` for others. */
export function elementTypeName(onnx: number): string {
  return Object.entries(ELEMENT_TYPES).find(([, v]) => v.onnx === onnx)?.[0] ?? `onnx type ${onnx}`;
}

const elements = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
/** Memory behind zero-element tensors (ORT wants a non-NULL pointer). */
const EMPTY = new BigUint64Array(1);

/** Release OrtValues of tensors collected without dispose(). */
const leaked = new FinalizationRegistry<{ lib: OrtLib; value: Ptr }>(({ lib, value }) => lib.raw.ReleaseValue(value));

/** Downloads device data (the backend's download path). */
export type Downloader = (t: CapiTensor) => Promise<TensorData>;

/** The EP (and its options) whose session produced a tensor: where its device data can be read back. */
export interface TensorOrigin {
  ep: EpName;
  epOptions: CapiEpOptions;
}

export class CapiTensor implements RtTensor {
  private value: Ptr | null;
  private host: TensorData | undefined;
  private where: TensorLocation;

  private constructor(
    readonly lib: OrtLib,
    readonly type: string,
    readonly dims: readonly number[],
    host: TensorData | undefined,
    value: Ptr | null,
    location: TensorLocation,
    /** Reads a device tensor back (undefined for host tensors). */
    private readonly downloader: Downloader | undefined,
    /** The session's EP for tensors ORT produced (undefined for host tensors made in JS). */
    readonly origin: TensorOrigin | undefined,
  ) {
    this.host = host;
    this.value = null;
    this.where = location;
    if (value !== null) this.adopt(value);
  }

  /** A host tensor over `data` (validated like onnxruntime's Tensor constructor). */
  static host(lib: OrtLib, type: string, data: TensorData, dims: readonly number[]): CapiTensor {
    const spec = ELEMENT_TYPES[type];
    if (!spec) throw new TypeError(`tensor: unsupported element type '${type}', expected one of ${Object.keys(ELEMENT_TYPES).join(', ')}`);
    if (!(data instanceof spec.array))
      throw new TypeError(`tensor: a ${type} tensor needs a ${spec.array.name}, got ${(data as object)?.constructor?.name ?? typeof data}`);
    if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`tensor: dims must be non-negative integers, got [${String(dims)}]`);
    }
    if (elements(dims) !== data.length)
      throw new RangeError(`tensor: dims [${dims.join(', ')}] hold ${elements(dims)} values, the data has ${data.length}`);
    return new CapiTensor(lib, type, [...dims], data, null, 'cpu', undefined, undefined);
  }

  /** A tensor owning an OrtValue ORT produced (host data already copied out, or device data). */
  static owned(
    lib: OrtLib,
    value: Ptr,
    type: string,
    dims: readonly number[],
    location: TensorLocation,
    downloader: Downloader,
    origin: TensorOrigin,
  ): CapiTensor {
    return new CapiTensor(lib, type, dims, undefined, value, location, downloader, origin);
  }

  get location(): TensorLocation {
    return this.where;
  }

  get disposed(): boolean {
    return this.where === 'none';
  }

  /** Host data; throws for device tensors (use getData() or the backend's download()). */
  get data(): TensorData {
    if (this.host) return this.host;
    if (this.where === 'none') throw new Error('tensor.data: the tensor was disposed');
    throw new Error(
      `tensor.data: this ${this.type} [${this.dims.join(', ')}] tensor lives in device memory (${this.where}); use getData() or backend.download()`,
    );
  }

  async getData(): Promise<TensorData> {
    if (this.host) return this.host;
    if (this.where === 'none' || !this.downloader) throw new Error('tensor.getData: the tensor was disposed');
    return this.downloader(this);
  }

  /**
   * The OrtValue to bind (created on first use for host tensors). Valid until dispose(); the
   * tensor keeps its array alive meanwhile.
   */
  ortValue(): Ptr {
    if (this.where === 'none') throw new Error(`tensor: this ${this.type} [${this.dims.join(', ')}] tensor was disposed`);
    if (this.value !== null) return this.value;
    const data = this.host!;
    const shape = BigInt64Array.from(this.dims, (d) => BigInt(d));
    const ptr = data.byteLength === 0 ? this.lib.koffi.address(EMPTY) : this.lib.koffi.address(data);
    const value = this.lib.make(
      'CreateTensorWithDataAsOrtValue',
      this.lib.cpuMemoryInfo(),
      ptr,
      data.byteLength,
      shape,
      shape.length,
      ELEMENT_TYPES[this.type]!.onnx,
    );
    this.adopt(value);
    return value;
  }

  /** The host array behind a bound value (kept referenced through a run), if any. */
  pinned(): TensorData | undefined {
    return this.host;
  }

  /** Release the OrtValue (device memory for device tensors). Safe to call twice. */
  dispose(): void {
    if (this.where === 'none') return;
    this.where = 'none';
    this.host = undefined;
    const v = this.value;
    this.value = null;
    if (v !== null) {
      leaked.unregister(this);
      this.lib.raw.ReleaseValue(v);
    }
  }

  private adopt(value: Ptr): void {
    this.value = value;
    leaked.register(this, { lib: this.lib, value }, this);
  }
}

/** Type, dims and memory of an OrtValue holding a tensor. */
export interface ValueDescription {
  type: string;
  onnx: number;
  dims: number[];
  count: number;
  /** 'cpu' for host memory, else 'gpu-buffer' (CUDA or WebGPU device memory). */
  location: TensorLocation;
  /** Name of its OrtMemoryInfo ('Cpu', 'Cuda', 'WebGPU_Buffer', …). */
  memory: string;
}

export function describeValue(lib: OrtLib, value: Ptr): ValueDescription {
  const info = lib.make('GetTensorTypeAndShape', value);
  let onnx: number, dims: number[], count: number;
  try {
    const t = new Int32Array(1);
    lib.call('GetTensorElementType', info, t);
    onnx = t[0]!;
    const rank = lib.count('GetDimensionsCount', info);
    const d = new BigInt64Array(rank);
    lib.call('GetDimensions', info, d, rank);
    dims = Array.from(d, Number);
    count = lib.count('GetTensorShapeElementCount', info);
  } finally {
    lib.raw.ReleaseTensorTypeAndShapeInfo(info);
  }
  const mem = lib.make('GetTensorMemoryInfo', value); // owned by the value
  const kind = new Int32Array(1);
  lib.raw.MemoryInfoGetDeviceType(mem, kind);
  const memory = lib.cString(lib.make('MemoryInfoGetName', mem));
  return { type: elementTypeName(onnx), onnx, dims, count, location: kind[0] === ORT_ENUM.DeviceCPU ? 'cpu' : 'gpu-buffer', memory };
}

/** A JS-owned copy of a host OrtValue's data. */
export function copyHostData(lib: OrtLib, value: Ptr, d: ValueDescription): TensorData {
  const spec = ELEMENT_TYPES[d.type];
  if (!spec)
    throw new TypeError(`output of ${d.type} cannot be read by the C-API backend (supported: ${Object.keys(ELEMENT_TYPES).join(', ')})`);
  const out = new spec.array(d.count);
  if (d.count > 0) {
    const src = lib.make('GetTensorMutableData', value);
    new Uint8Array(out.buffer).set(new Uint8Array(lib.koffi.view(src, out.byteLength)));
  }
  return out as unknown as TensorData;
}
