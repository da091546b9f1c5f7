/** Typed wrappers: elementwise math, reductions, matrix products. Each infers and checks shapes. */
import type { GraphBuilder } from './builder.js';
import type { DType } from '../onnx/dtype.js';
import { isFloat } from '../onnx/dtype.js';
import type { Shape } from './shape.js';
import { broadcastShapes, dimEquals, fmtShape, normAxis, ShapeError } from './shape.js';
import type { Value } from './value.js';

const f = (value: number) => ({ type: 'float' as const, value });
const i = (value: number) => ({ type: 'int' as const, value });

function sameType(g: GraphBuilder, op: string, vs: readonly Value[]): DType {
  const t = vs[0]!.dtype;
  vs.forEach((v, k) => {
    if (v.dtype !== t) throw new ShapeError(g.nodeName(op), `#${k} (${v.name})`, `dtype ${t}`, `dtype ${v.dtype}`);
  });
  return t;
}

function binary(op: string, out?: DType) {
  return (g: GraphBuilder, a: Value, b: Value): Value => {
    const t = sameType(g, op, [a, b]);
    const shape = broadcastShapes([a.shape, b.shape], g.nodeName(op), [a.name, b.name]);
    return g.node(op, [a, b], { outputs: [{ dtype: out ?? t, shape }] })[0]!;
  };
}

function unary(op: string, floatOnly = true) {
  return (g: GraphBuilder, x: Value): Value => {
    if (floatOnly && !isFloat(x.dtype)) throw new ShapeError(g.nodeName(op), x.name, 'a float tensor', x.dtype);
    return g.node(op, [x], { outputs: [{ dtype: x.dtype, shape: x.shape }] })[0]!;
  };
}

export const Add = binary('Add');
export const Sub = binary('Sub');
export const Mul = binary('Mul');
export const Div = binary('Div');
export const Pow = binary('Pow');
export const Mod = binary('Mod');
export const Equal = binary('Equal', 'bool');
export const Greater = binary('Greater', 'bool');
export const GreaterOrEqual = binary('GreaterOrEqual', 'bool');
export const LessOrEqual = binary('LessOrEqual', 'bool');

export const Exp = unary('Exp');
export const Neg = unary('Neg', false);
export const Sqrt = unary('Sqrt');
export const Sigmoid = unary('Sigmoid');
export const Softplus = unary('Softplus');
export const Cos = unary('Cos');
export const Sin = unary('Sin');
export const Identity = unary('Identity', false);

function variadic(op: string) {
  return (g: GraphBuilder, ...xs: Value[]): Value => {
    const t = sameType(g, op, xs);
    const shape = broadcastShapes(
      xs.map((x) => x.shape),
      g.nodeName(op),
      xs.map((x) => x.name),
    );
    return g.node(op, xs, { outputs: [{ dtype: t, shape }] })[0]!;
  };
}
export const Max = variadic('Max');
export const Min = variadic('Min');

export function Where(g: GraphBuilder, cond: Value, a: Value, b: Value): Value {
  const name = g.nodeName('Where');
  if (cond.dtype !== 'bool') throw new ShapeError(name, cond.name, 'dtype bool', cond.dtype);
  const t = sameType(g, 'Where', [a, b]);
  const shape = broadcastShapes([cond.shape, a.shape, b.shape], name, [cond.name, a.name, b.name]);
  return g.node('Where', [cond, a, b], { outputs: [{ dtype: t, shape }] })[0]!;
}

export function Cast(g: GraphBuilder, x: Value, to: DType, onnxCode: number): Value {
  return g.node('Cast', [x], { attrs: { to: i(onnxCode) }, outputs: [{ dtype: to, shape: x.shape }] })[0]!;
}

/** numpy matmul: batch dims broadcast, [..,M,K]·[..,K,N] → [..,M,N]. */
export function MatMul(g: GraphBuilder, a: Value, b: Value): Value {
  const name = g.nodeName('MatMul');
  const t = sameType(g, 'MatMul', [a, b]);
  if (a.rank < 2) throw new ShapeError(name, a.name, 'rank ≥ 2', fmtShape(a.shape));
  if (b.rank < 2) throw new ShapeError(name, b.name, 'rank ≥ 2', fmtShape(b.shape));
  const k1 = a.shape[a.rank - 1]!;
  const k2 = b.shape[b.rank - 2]!;
  if (dimEquals(k1, k2) === false) {
    throw new ShapeError(name, b.name, `[…,${String(k1)},N] to match ${a.name} ${fmtShape(a.shape)}`, fmtShape(b.shape));
  }
  const batch = broadcastShapes([a.shape.slice(0, -2), b.shape.slice(0, -2)], name, [a.name, b.name]);
  return g.node('MatMul', [a, b], { outputs: [{ dtype: t, shape: [...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!] }] })[0]!;
}

/** Gemm on 2-D a [M,K] (or [K,M] with transA) and b [K,N] (or [N,K] with transB), optional bias. */
export function Gemm(g: GraphBuilder, a: Value, b: Value, c?: Value, opts: { transA?: boolean; transB?: boolean } = {}): Value {
  const name = g.nodeName('Gemm');
  const t = sameType(g, 'Gemm', [a, b, ...(c ? [c] : [])]);
  if (a.rank !== 2) throw new ShapeError(name, a.name, 'rank 2', fmtShape(a.shape));
  if (b.rank !== 2) throw new ShapeError(name, b.name, 'rank 2', fmtShape(b.shape));
  const [m, ka] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (dimEquals(ka, kb) === false)
    throw new ShapeError(name, b.name, `K = ${String(ka)} (from ${a.name})`, `K = ${String(kb)} in ${fmtShape(b.shape)}`);
  if (c) broadcastShapes([[m, n], c.shape], name, ['A·B', c.name]);
  return g.node('Gemm', [a, b, c], {
    attrs: { transA: opts.transA ? i(1) : undefined, transB: opts.transB ? i(1) : undefined },
    outputs: [{ dtype: t, shape: [m, n] }],
  })[0]!;
}

function reduceShape(g: GraphBuilder, op: string, x: Value, axes: readonly number[], keepdims: boolean): Shape {
  const ax = new Set(axes.map((a) => normAxis(a, x.rank, g.nodeName(op), x.name)));
  return x.shape.flatMap((d, k) => (ax.has(k) ? (keepdims ? [1] : []) : [d]));
}

/** ReduceMean-18 / ReduceSum-13 over constant `axes`. */
function reduce(op: 'ReduceMean' | 'ReduceSum') {
  return (g: GraphBuilder, x: Value, axes: readonly number[], keepdims = true): Value => {
    const shape = reduceShape(g, op, x, axes, keepdims);
    const ax = g.constant('int64', [axes.length], axes);
    return g.node(op, [x, ax], { attrs: { keepdims: i(keepdims ? 1 : 0) }, outputs: [{ dtype: x.dtype, shape }] })[0]!;
  };
}
export const ReduceMean = reduce('ReduceMean');
export const ReduceSum = reduce('ReduceSum');

/** Softmax-13 along one axis. */
export function Softmax(g: GraphBuilder, x: Value, axis: number): Value {
  if (!isFloat(x.dtype)) throw new ShapeError(g.nodeName('Softmax'), x.name, 'a float tensor', x.dtype);
  const a = normAxis(axis, x.rank, g.nodeName('Softmax'), x.name);
  return g.node('Softmax', [x], { attrs: { axis: i(a) }, outputs: [{ dtype: x.dtype, shape: x.shape }] })[0]!;
}

/** Inclusive cumulative sum along a constant axis. */
export function CumSum(g: GraphBuilder, x: Value, axis: number, opts: { exclusive?: boolean; reverse?: boolean } = {}): Value {
  normAxis(axis, x.rank, g.nodeName('CumSum'), x.name);
  const ax = g.constant('int64', [], [axis]);
  return g.node('CumSum', [x, ax], {
    attrs: { exclusive: opts.exclusive ? i(1) : undefined, reverse: opts.reverse ? i(1) : undefined },
    outputs: [{ dtype: x.dtype, shape: x.shape }],
  })[0]!;
}

/**
 * RMSNormalization (ai.onnx opset 23): x / sqrt(mean(x², last axis) + epsilon) · scale, statistics in
 * float32 (stash_type 1). Normalises over the last axis only; `scale` is [last dim of x].
 */
export function RMSNormalization(g: GraphBuilder, x: Value, scale: Value, epsilon: number): Value {
  const name = g.nodeName('RMSNormalization');
  if (!isFloat(x.dtype)) throw new ShapeError(name, x.name, 'a float tensor', x.dtype);
  if (scale.dtype !== x.dtype) throw new ShapeError(name, scale.name, `dtype ${x.dtype} (as ${x.name})`, `dtype ${scale.dtype}`);
  if (scale.rank !== 1 || dimEquals(scale.shape[0]!, x.shape[x.rank - 1]!) === false) {
    throw new ShapeError(name, scale.name, `[${String(x.shape[x.rank - 1])}] (the last dim of ${x.name})`, fmtShape(scale.shape));
  }
  return g.node('RMSNormalization', [x, scale], {
    attrs: { axis: i(-1), epsilon: f(epsilon), stash_type: i(1) },
    outputs: [{ dtype: x.dtype, shape: x.shape }],
  })[0]!;
}
