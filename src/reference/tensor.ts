/**
 * The reference model's tensor: a flat row-major array plus its shape (slowest axis first, ONNX
 * order). Deliberately minimal: no strides, no views, no broadcasting.
 */
export type FloatArray = Float32Array | Float64Array;

export interface Tensor<T extends FloatArray = FloatArray> {
  readonly data: T;
  readonly shape: readonly number[];
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`shape: expected non-negative integers, got [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Wrap data with a shape, checking that the sizes agree. */
export function tensor<T extends FloatArray>(data: T, shape: readonly number[]): Tensor<T> {
  const n = numel(shape);
  if (data.length !== n) {
    throw new RangeError(`tensor: shape [${shape.join(', ')}] needs ${n} elements, got ${data.length}`);
  }
  return { data, shape: [...shape] };
}

/** Throw unless `t` has exactly `shape` (`name` is the argument, for the message). */
export function expectShape(t: Tensor, shape: readonly number[], name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`${name}: expected shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

/** Throw unless a flat weight has `n` elements. */
export function expectLength(a: ArrayLike<number>, n: number, name: string): void {
  if (a.length !== n) throw new RangeError(`${name}: expected ${n} elements, got ${a.length}`);
}

export interface MaxDiff {
  readonly max: number;
  /** Flat index of the largest |Δ| (−1 for empty tensors). */
  readonly index: number;
  /** The same index as coordinates in `shape`. */
  readonly at: readonly number[];
}

/** Largest |a − b| over two equally shaped tensors (NaN anywhere counts as +∞). */
export function maxAbsDiff(a: Tensor, b: Tensor): MaxDiff {
  expectShape(b, a.shape, 'maxAbsDiff(b)');
  let max = 0;
  let index = a.data.length > 0 ? 0 : -1;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    const v = Number.isNaN(d) ? Infinity : d;
    if (v > max) {
      max = v;
      index = i;
    }
  }
  return { max, index, at: unravel(index, a.shape) };
}

/** Flat index → coordinates. */
function unravel(index: number, shape: readonly number[]): number[] {
  const at = new Array<number>(shape.length).fill(0);
  let rest = Math.max(index, 0);
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    at[i] = d > 0 ? rest % d : 0;
    rest = d > 0 ? Math.floor(rest / d) : 0;
  }
  return at;
}

/** Slice `[start, end)` of axis 1 of a tensor shaped [B, L, ...rest] (e.g. a time window). */
export function sliceAxis1<T extends FloatArray>(t: Tensor<T>, start: number, end: number): Tensor<T> {
  const [b, l, ...rest] = t.shape;
  if (b === undefined || l === undefined || start < 0 || end > l || start > end) {
    throw new RangeError(`sliceAxis1: bad range [${start}, ${end}) for shape [${t.shape.join(', ')}]`);
  }
  const inner = numel(rest);
  const len = end - start;
  const Ctor = t.data.constructor as new (n: number) => T;
  const out = new Ctor(b * len * inner);
  for (let i = 0; i < b; i++) {
    out.set(t.data.subarray((i * l + start) * inner, (i * l + end) * inner), i * len * inner);
  }
  return { data: out, shape: [b, len, ...rest] };
}
