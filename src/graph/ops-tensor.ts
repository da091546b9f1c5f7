/** Typed wrappers: shape manipulation (Reshape, Transpose, Split, Slice, Concat, …). */
import type { GraphBuilder } from './builder.js';
import type { Dim, Shape } from './shape.js';
import { dimAdd, dimEquals, dimSub, fmtShape, isStatic, normAxis, numel, ShapeError } from './shape.js';
import type { Value } from './value.js';

const ints = (value: number[]) => ({ type: 'ints' as const, value });
const int = (value: number) => ({ type: 'int' as const, value });

/**
 * Reshape to `target`, a shape written with the same dims the input uses: static dims become
 * numbers, a symbolic dim at the same position as in the input becomes 0 (copy), and at most one
 * other symbolic dim becomes −1. Anything else needs `ReshapeTo` with a computed shape tensor.
 */
export function Reshape(g: GraphBuilder, x: Value, target: Shape): Value {
  const name = g.nodeName('Reshape');
  const bad = target.find((d) => typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0));
  if (bad !== undefined) throw new ShapeError(name, x.name, 'a target of non-negative integer or symbolic dims', fmtShape(target));
  const spec: number[] = [];
  let inferred = 0;
  target.forEach((d, k) => {
    if (typeof d === 'number') spec.push(d);
    else if (k < x.rank && x.shape[k] === d) spec.push(0);
    else {
      inferred++;
      spec.push(-1);
    }
  });
  if (inferred > 1) throw new ShapeError(name, x.name, `a target with at most one new symbolic dim`, fmtShape(target));
  const [nIn, nOut] = [numel(x.shape), numel(target)];
  if (nIn !== undefined && nOut !== undefined && nIn !== nOut) {
    throw new ShapeError(name, x.name, `${nOut} elements for ${fmtShape(target)}`, `${nIn} elements in ${fmtShape(x.shape)}`);
  }
  if (spec.every((s) => s > 0) && nIn === undefined) {
    throw new ShapeError(name, x.name, `a static input for static target ${fmtShape(target)}`, fmtShape(x.shape));
  }
  const shape = g.constant('int64', [spec.length], spec);
  return g.node('Reshape', [x, shape], { outputs: [{ dtype: x.dtype, shape: target }] })[0]!;
}

/** Reshape by a shape tensor computed in the graph; `target` states the resulting shape. */
export function ReshapeTo(g: GraphBuilder, x: Value, shape: Value, target: Shape): Value {
  if (shape.dtype !== 'int64' || shape.rank !== 1)
    throw new ShapeError(g.nodeName('Reshape'), shape.name, 'int64 [rank]', `${shape.dtype}${fmtShape(shape.shape)}`);
  return g.node('Reshape', [x, shape], { outputs: [{ dtype: x.dtype, shape: target }] })[0]!;
}

export function Transpose(g: GraphBuilder, x: Value, perm: readonly number[]): Value {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((p, k) => p !== k)) {
    throw new ShapeError(g.nodeName('Transpose'), x.name, `a permutation of 0..${x.rank - 1}`, JSON.stringify(perm));
  }
  return g.node('Transpose', [x], {
    attrs: { perm: ints([...perm]) },
    outputs: [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }],
  })[0]!;
}

/** Split-18 into pieces of the given sizes along `axis`. */
export function Split(g: GraphBuilder, x: Value, sizes: readonly number[], axis: number): Value[] {
  const name = g.nodeName('Split');
  const a = normAxis(axis, x.rank, name, x.name);
  const total = sizes.reduce((s, v) => s + v, 0);
  if (dimEquals(x.shape[a]!, total) === false) {
    throw new ShapeError(name, x.name, `dim ${a} = ${total} (${sizes.join('+')})`, fmtShape(x.shape));
  }
  const split = g.constant('int64', [sizes.length], sizes);
  return g.node('Split', [x, split], {
    attrs: { axis: int(a) },
    outputs: sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, k) => (k === a ? s : d)) })),
  });
}

/** Slice end meaning "to the end of the axis". */
export const END = Number.MAX_SAFE_INTEGER;
const INT64_MAX = END;

/** Slice with constant starts/ends along `axes` (step 1). Negative indices count from the end. */
export function Slice(g: GraphBuilder, x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Value {
  const name = g.nodeName('Slice');
  if (starts.length !== axes.length || ends.length !== axes.length) {
    throw new ShapeError(
      name,
      x.name,
      `one start and one end per axis (${axes.length} axes)`,
      `${starts.length} starts, ${ends.length} ends`,
    );
  }
  const seen = new Set(axes.map((ax) => normAxis(ax, x.rank, name, x.name)));
  if (seen.size !== axes.length) throw new ShapeError(name, x.name, 'distinct axes', JSON.stringify(axes));
  const shape: Dim[] = [...x.shape];
  axes.forEach((ax, k) => {
    const a = normAxis(ax, x.rank, name, x.name);
    const d = x.shape[a]!;
    const s = starts[k]!;
    const e = ends[k]!;
    if (typeof d === 'number') {
      const cl = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
      shape[a] = Math.max(0, cl(e) - cl(s));
    } else if (s >= 0 && e >= INT64_MAX) shape[a] = dimSub(d, s) ?? `${name}_d${a}`;
    else if (s < 0 && e >= INT64_MAX)
      shape[a] = -s; // the last |s| (assumes d ≥ |s|)
    else if (s >= 0 && e >= 0)
      shape[a] = e - s; // assumes d ≥ e
    else if (s >= 0 && e < 0) shape[a] = dimSub(dimSub(d, -e) ?? `${name}_d${a}`, s) ?? `${name}_d${a}`;
    else shape[a] = `${name.replace(/[^A-Za-z0-9_.]/g, '_')}_d${a}`;
  });
  const c = (v: readonly number[]) =>
    g.constant(
      'int64',
      [v.length],
      v.map((n) => (n >= INT64_MAX ? Number.MAX_SAFE_INTEGER : n)),
    );
  return g.node('Slice', [x, c(starts), c(ends), c(axes)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Slice with start/end tensors computed in the graph; `target` states the resulting shape. */
export function SliceDyn(g: GraphBuilder, x: Value, starts: Value, ends: Value, axes: readonly number[], target: Shape): Value {
  const ax = g.constant('int64', [axes.length], axes);
  return g.node('Slice', [x, starts, ends, ax], { outputs: [{ dtype: x.dtype, shape: target }] })[0]!;
}

export function Concat(g: GraphBuilder, xs: readonly Value[], axis: number): Value {
  const name = g.nodeName('Concat');
  if (xs.length === 0) throw new ShapeError(name, 'inputs', 'at least one input', 'none');
  const r = xs[0]!.rank;
  const a = normAxis(axis, r, name, xs[0]!.name);
  let along: Dim = 0;
  xs.forEach((x, k) => {
    if (x.dtype !== xs[0]!.dtype) throw new ShapeError(name, x.name, `dtype ${xs[0]!.dtype}`, x.dtype);
    if (x.rank !== r) throw new ShapeError(name, `#${k} (${x.name})`, `rank ${r}`, fmtShape(x.shape));
    x.shape.forEach((d, j) => {
      if (j !== a && dimEquals(d, xs[0]!.shape[j]!) === false) {
        throw new ShapeError(name, `#${k} (${x.name})`, `dims other than ${a} as ${fmtShape(xs[0]!.shape)}`, fmtShape(x.shape));
      }
    });
    along = dimAdd(along, x.shape[a]!) ?? `${name.replace(/[^A-Za-z0-9_.]/g, '_')}_d${a}`;
  });
  const shape = xs[0]!.shape.map((d, j) => (j === a ? along : d));
  return g.node('Concat', xs, { attrs: { axis: int(a) }, outputs: [{ dtype: xs[0]!.dtype, shape }] })[0]!;
}

export function Unsqueeze(g: GraphBuilder, x: Value, axes: readonly number[]): Value {
  const r = x.rank + axes.length;
  const ax = new Set(axes.map((a) => normAxis(a, r, g.nodeName('Unsqueeze'), x.name)));
  const shape: Dim[] = [];
  let k = 0;
  for (let j = 0; j < r; j++) shape.push(ax.has(j) ? 1 : x.shape[k++]!);
  return g.node('Unsqueeze', [x, g.constant('int64', [axes.length], axes)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

export function Squeeze(g: GraphBuilder, x: Value, axes: readonly number[]): Value {
  const name = g.nodeName('Squeeze');
  const ax = new Set(axes.map((a) => normAxis(a, x.rank, name, x.name)));
  for (const a of ax) if (dimEquals(x.shape[a]!, 1) === false) throw new ShapeError(name, x.name, `dim ${a} = 1`, fmtShape(x.shape));
  const shape = x.shape.filter((_, j) => !ax.has(j));
  return g.node('Squeeze', [x, g.constant('int64', [axes.length], axes)], { outputs: [{ dtype: x.dtype, shape }] })[0]!;
}

/** Expand to `target` (broadcast). Static targets use a constant; symbolic ones need `shape`. */
export function Expand(g: GraphBuilder, x: Value, target: Shape, shape?: Value): Value {
  const name = g.nodeName('Expand');
  const off = target.length - x.rank;
  x.shape.forEach((d, k) => {
    if (d !== 1 && dimEquals(d, target[k + off]!) === false)
      throw new ShapeError(name, x.name, `broadcastable to ${fmtShape(target)}`, fmtShape(x.shape));
  });
  let s = shape;
  if (!s) {
    // symbolic dims already present at the same position in x can be expanded with 1
    const spec = target.map((d, k) => (typeof d === 'number' ? d : x.shape[k - off] === d ? 1 : NaN));
    if (spec.some(Number.isNaN)) throw new ShapeError(name, x.name, `a shape tensor for symbolic target ${fmtShape(target)}`, 'none');
    s = g.constant('int64', [spec.length], spec);
  }
  return g.node('Expand', [x, s], { outputs: [{ dtype: x.dtype, shape: target }] })[0]!;
}

/** Shape-15 (optionally a [start, end) range of dims). */
export function Shape_(g: GraphBuilder, x: Value, start?: number, end?: number): Value {
  const s = start ?? 0;
  const e = end ?? x.rank;
  const n = (e < 0 ? e + x.rank : e) - (s < 0 ? s + x.rank : s);
  return g.node('Shape', [x], {
    attrs: { start: start !== undefined ? int(start) : undefined, end: end !== undefined ? int(end) : undefined },
    outputs: [{ dtype: 'int64', shape: [n] }],
  })[0]!;
}

/** Pad-21 with pads computed in the graph; `target` states the padded shape. */
export function PadDyn(g: GraphBuilder, x: Value, pads: Value, target: Shape, axes?: readonly number[]): Value {
  const ax = axes ? g.constant('int64', [axes.length], axes) : undefined;
  return g.node('Pad', [x, pads, undefined, ax], { outputs: [{ dtype: x.dtype, shape: target }] })[0]!;
}

/** Pad-21 with constant pads [begin…, end…] over `axes` (zeros). */
export function Pad(g: GraphBuilder, x: Value, pads: readonly number[], axes: readonly number[]): Value {
  const name = g.nodeName('Pad');
  const shape: Dim[] = [...x.shape];
  axes.forEach((ax, k) => {
    const a = normAxis(ax, x.rank, name, x.name);
    const add = pads[k]! + pads[k + axes.length]!;
    shape[a] = dimAdd(shape[a]!, add) ?? `${name}_d${a}`;
  });
  return g.node('Pad', [x, g.constant('int64', [pads.length], pads), undefined, g.constant('int64', [axes.length], axes)], {
    outputs: [{ dtype: x.dtype, shape }],
  })[0]!;
}

/** Gather rows of `data` (axis 0) by integer `indices`. */
export function Gather(g: GraphBuilder, data: Value, indices: Value, axis = 0): Value {
  const name = g.nodeName('Gather');
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32')
    throw new ShapeError(name, indices.name, 'int64 or int32 indices', indices.dtype);
  const a = normAxis(axis, data.rank, name, data.name);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return g.node('Gather', [data, indices], { attrs: { axis: a ? int(a) : undefined }, outputs: [{ dtype: data.dtype, shape }] })[0]!;
}

/**
 * TopK-11 along `axis` (largest, sorted): values and int64 indices [..., k, ...]. Equal values come
 * out lower index first (the ONNX spec's tie rule).
 */
export function TopK(g: GraphBuilder, x: Value, k: number, axis = -1): { values: Value; indices: Value } {
  const name = g.nodeName('TopK');
  const a = normAxis(axis, x.rank, name, x.name);
  const d = x.shape[a]!;
  if (!Number.isSafeInteger(k) || k < 1 || (typeof d === 'number' && k > d)) {
    throw new ShapeError(name, x.name, `k in [1, ${String(d)}]`, String(k));
  }
  const shape = x.shape.map((s, i) => (i === a ? k : s));
  const [values, indices] = g.node('TopK', [x, g.constant('int64', [1], [k])], {
    attrs: { axis: int(a) },
    outputs: [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ],
  });
  return { values: values!, indices: indices! };
}

/** GatherElements-13: out[i][j] = data[i][indices[i][j]] along `axis` (indices of the output's shape). */
export function GatherElements(g: GraphBuilder, data: Value, indices: Value, axis = -1): Value {
  const name = g.nodeName('GatherElements');
  if (indices.dtype !== 'int64') throw new ShapeError(name, indices.name, 'int64 indices', indices.dtype);
  if (indices.rank !== data.rank) throw new ShapeError(name, indices.name, `rank ${data.rank} (as ${data.name})`, fmtShape(indices.shape));
  const a = normAxis(axis, data.rank, name, data.name);
  return g.node('GatherElements', [data, indices], { attrs: { axis: int(a) }, outputs: [{ dtype: data.dtype, shape: indices.shape }] })[0]!;
}

/** Range(start, limit, delta) of scalars; `length` names the resulting dim. */
export function Range(g: GraphBuilder, start: Value, limit: Value, delta: Value, length: Dim): Value {
  return g.node('Range', [start, limit, delta], { outputs: [{ dtype: start.dtype, shape: [length] }] })[0]!;
}

export { isStatic };
