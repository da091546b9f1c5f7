/** Tensor element types the project uses, with their ONNX `TensorProto.DataType` codes. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool' | 'int4' | 'uint4';

/** ONNX TensorProto.DataType enum values (onnx.proto). */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
  uint4: 21,
  int4: 22,
};

export const DTYPE_FROM_ONNX: ReadonlyMap<number, DType> = new Map(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]));

/** Bits per element. */
const DTYPE_BITS: Readonly<Record<DType, number>> = {
  float32: 32,
  float16: 16,
  bfloat16: 16,
  float64: 64,
  int64: 64,
  int32: 32,
  int8: 8,
  uint8: 8,
  bool: 8,
  int4: 4,
  uint4: 4,
};

export const isFloat = (t: DType): boolean => t === 'float32' || t === 'float16' || t === 'bfloat16' || t === 'float64';

/** Bytes needed for `count` elements (sub-byte types round up). */
export function byteSize(dtype: DType, count: number): number {
  return Math.ceil((count * DTYPE_BITS[dtype]) / 8);
}
