/**
 * Typed wrapper for ONNX `Scan` (opset ≥ 16 semantics): a loop over one axis of its scan inputs
 * that threads state variables through a body graph.
 *
 *   states ─────────────┐          per iteration t:
 *   scan inputs[·,t,·] ─┴─ body ─┬─ states'  (carried to t+1; the last ones are outputs)
 *                                └─ elements (stacked along scan_output_axes → scan outputs)
 *
 * The body may read values of the enclosing graph (weights, constants) directly.
 */
import type { GraphBuilder } from './builder.js';
import type { Dim, Shape } from './shape.js';
import { dimEquals, fmtShape, normAxis, ShapeError } from './shape.js';
import type { Value } from './value.js';

const int = (value: number) => ({ type: 'int' as const, value });
const ints = (value: number[]) => ({ type: 'ints' as const, value });

export interface ScanSpec {
  /** Loop-carried values (N), in body order. */
  states: Value[];
  /** Scanned tensors (M) and the axis each is iterated over. */
  scanInputs: { value: Value; axis: number }[];
  /** Axis of each scan output at which the per-iteration elements are stacked (default 0). */
  outputAxes?: number[];
  /**
   * Builds the body: receives the states and the scan elements (the scan inputs without their
   * scan axis) as body inputs; returns the next states (same dtypes and ranks) and the elements.
   */
  body: (sg: GraphBuilder, states: Value[], elements: Value[]) => { states: Value[]; outputs: Value[] };
}

export function Scan(g: GraphBuilder, spec: ScanSpec): { states: Value[]; outputs: Value[] } {
  const name = g.nodeName('Scan');
  if (spec.scanInputs.length === 0) throw new ShapeError(name, 'scan inputs', 'at least one', 'none');
  const axes = spec.scanInputs.map((s) => normAxis(s.axis, s.value.rank, name, s.value.name));
  const len: Dim = spec.scanInputs[0]!.value.shape[axes[0]!]!;
  spec.scanInputs.forEach((s, k) => {
    if (dimEquals(s.value.shape[axes[k]!]!, len) === false) {
      throw new ShapeError(name, s.value.name, `scan axis ${axes[k]} of length ${String(len)}`, fmtShape(s.value.shape));
    }
  });
  const sg = g.subgraph('scan_body');
  // body inputs are named under a prefix unique in the model (`unique` reserves the prefix itself)
  const pre = g.model.unique(`${name}/body`.replace(/^\//, ''));
  const stIn = spec.states.map((s, k) => sg.input(`${pre}/state_${k}`, s.dtype, s.shape));
  const elIn = spec.scanInputs.map((s, k) =>
    sg.input(
      `${pre}/elem_${k}`,
      s.value.dtype,
      s.value.shape.filter((_, j) => j !== axes[k]),
    ),
  );
  const res = spec.body(sg, stIn, elIn);
  if (res.states.length !== spec.states.length)
    throw new ShapeError(name, 'body states', `${spec.states.length} values`, `${res.states.length}`);
  res.states.forEach((s, k) => {
    const want = spec.states[k]!;
    if (s.dtype !== want.dtype || s.rank !== want.rank) {
      throw new ShapeError(name, `body state #${k} (${s.name})`, `${want.dtype}${fmtShape(want.shape)}`, `${s.dtype}${fmtShape(s.shape)}`);
    }
    sg.output(s);
  });
  const outAxes = spec.outputAxes ?? res.outputs.map(() => 0);
  if (outAxes.length !== res.outputs.length) throw new ShapeError(name, 'outputAxes', `${res.outputs.length} axes`, `${outAxes.length}`);
  const outShapes: Shape[] = res.outputs.map((o, k) => {
    sg.output(o);
    const a = normAxis(outAxes[k]!, o.rank + 1, name, o.name);
    return [...o.shape.slice(0, a), len, ...o.shape.slice(a)];
  });
  const outs = g.node('Scan', [...spec.states, ...spec.scanInputs.map((s) => s.value)], {
    attrs: {
      body: { type: 'graph', value: sg.toGraphIR() },
      num_scan_inputs: int(spec.scanInputs.length),
      scan_input_axes: axes.some((a) => a !== 0) ? ints(axes) : undefined,
      scan_output_axes: outAxes.some((a) => a !== 0)
        ? ints(outAxes.map((a, k) => normAxis(a, res.outputs[k]!.rank + 1, name, 'outputAxes')))
        : undefined,
    },
    outputs: [
      ...spec.states.map((s) => ({ dtype: s.dtype, shape: s.shape })),
      ...res.outputs.map((o, k) => ({ dtype: o.dtype, shape: outShapes[k]! })),
    ],
  });
  return { states: outs.slice(0, spec.states.length), outputs: outs.slice(spec.states.length) };
}
