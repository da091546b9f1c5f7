/** TensorData from typed arrays (constants, small initializers, tests). */
import type { DType } from '../onnx/dtype.js';
import { byteSize } from '../onnx/dtype.js';
import type { TensorData } from './ir.js';

export type NumericArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;

/** Known values of a small tensor (kept beside its bytes so that shape inference can read them). */
export type KnownTensor = TensorData & { values?: readonly number[] };

function toBytes(dtype: DType, values: ArrayLike<number> | NumericArray): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'float32': {
      const a = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
      return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    }
    case 'int64': {
      const a = values instanceof BigInt64Array ? values : BigInt64Array.from(Array.from(values as ArrayLike<number>, (v) => BigInt(v)));
      return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    }
    case 'int32': {
      const a = values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
      return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    }
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values as ArrayLike<number>, (v) => (dtype === 'bool' ? (v ? 1 : 0) : v));
    case 'int8': {
      const a = Int8Array.from(values as ArrayLike<number>);
      return new Uint8Array(a.buffer);
    }
    case 'float16': {
      if (!(values instanceof Uint16Array)) throw new TypeError('float16 tensors take Uint16Array bits');
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    }
    default:
      throw new TypeError(`tensorFromArray: dtype ${dtype} is not supported (got ${n} values)`);
  }
}

/** A tensor held in memory. */
export function tensorFromArray(dtype: DType, dims: readonly number[], values: ArrayLike<number> | NumericArray): KnownTensor {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new RangeError(`tensorFromArray: dims ${JSON.stringify(dims)} hold ${count} elements, got ${values.length} values`);
  }
  const bytes = toBytes(dtype, values);
  const small = count <= 64 && !(values instanceof BigInt64Array);
  return {
    dtype,
    dims: [...dims],
    byteLength: byteSize(dtype, count),
    bytes: () => bytes,
    values: small ? Array.from(values as ArrayLike<number>) : undefined,
  };
}

/** A tensor whose bytes are produced only when the serializer asks (weights). */
export function lazyTensor(dtype: DType, dims: readonly number[], load: () => Promise<Uint8Array>): TensorData {
  const count = dims.reduce((a, b) => a * b, 1);
  return { dtype, dims: [...dims], byteLength: byteSize(dtype, count), bytes: load };
}
