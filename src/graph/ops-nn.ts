/** Typed wrappers: convolution and control flow. */
import type { GraphBuilder } from './builder.js';
import type { Dim, Shape } from './shape.js';
import { dimAdd, dimEquals, fmtShape, ShapeError } from './shape.js';
import type { Value } from './value.js';

const ints = (value: number[]) => ({ type: 'ints' as const, value });
const int = (value: number) => ({ type: 'int' as const, value });

/** 1-D Conv: x [N,C,L], w [M,C/group,K], bias [M], no padding unless `pads` [begin,end]. */
export function Conv1d(
  g: GraphBuilder,
  x: Value,
  w: Value,
  bias: Value | undefined,
  opts: { group: number; pads?: [number, number] },
): Value {
  const name = g.nodeName('Conv');
  if (x.rank !== 3) throw new ShapeError(name, x.name, '[N,C,L]', fmtShape(x.shape));
  if (w.rank !== 3) throw new ShapeError(name, w.name, '[M,C/group,K]', fmtShape(w.shape));
  const [m, cg, k] = w.shape as [Dim, Dim, number];
  if (dimEquals(x.shape[1]!, typeof cg === 'number' ? cg * opts.group : cg) === false) {
    throw new ShapeError(name, w.name, `C/group = ${String(x.shape[1])}/${opts.group}`, fmtShape(w.shape));
  }
  if (bias && dimEquals(bias.shape[0]!, m) === false) throw new ShapeError(name, bias.name, `[${String(m)}]`, fmtShape(bias.shape));
  const pads = opts.pads ?? [0, 0];
  const len = dimAdd(x.shape[2]!, pads[0] + pads[1] - k + 1) ?? `${name}_L`;
  return g.node('Conv', [x, w, bias], {
    attrs: { group: int(opts.group), kernel_shape: ints([k]), pads: ints([...pads]), strides: ints([1]), dilations: ints([1]) },
    outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, m, len] }],
  })[0]!;
}

/**
 * If(cond) then `thenBranch` else `elseBranch`. Each branch builds its outputs in its own
 * subgraph (it may read values of the enclosing graph). `shapes` states the merged output shapes;
 * each branch's outputs must be compatible with them.
 */
export function If(
  g: GraphBuilder,
  cond: Value,
  shapes: Shape[],
  thenBranch: (sg: GraphBuilder) => Value[],
  elseBranch: (sg: GraphBuilder) => Value[],
): Value[] {
  const name = g.nodeName('If');
  if (cond.dtype !== 'bool') throw new ShapeError(name, cond.name, 'a bool scalar', cond.dtype);
  const build = (label: string, fn: (sg: GraphBuilder) => Value[]) => {
    const sg = g.subgraph(label);
    const outs = fn(sg);
    if (outs.length !== shapes.length) throw new ShapeError(name, label, `${shapes.length} outputs`, `${outs.length}`);
    outs.forEach((o, k) => {
      if (o.rank !== shapes[k]!.length)
        throw new ShapeError(name, `${label} output #${k} (${o.name})`, fmtShape(shapes[k]!), fmtShape(o.shape));
      sg.output(o); // an outer value passes through an Identity; the dtype is o's either way
    });
    return { graph: sg.toGraphIR(), dtypes: outs.map((o) => o.dtype) };
  };
  const t = build('then', thenBranch);
  const e = build('else', elseBranch);
  t.dtypes.forEach((d, k) => {
    if (d !== e.dtypes[k]) throw new ShapeError(name, `else output #${k}`, `dtype ${d} (as then)`, e.dtypes[k]!);
  });
  return g.node('If', [cond], {
    attrs: { then_branch: { type: 'graph', value: t.graph }, else_branch: { type: 'graph', value: e.graph } },
    outputs: shapes.map((s, k) => ({ dtype: t.dtypes[k]!, shape: s })),
  });
}
