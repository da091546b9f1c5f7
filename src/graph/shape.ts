/**
 * Shapes with symbolic dims, checked while the graph is built.
 *
 * A dim is a number or a symbolic expression: an affine form over named dims, kept as a canonical
 * string such as `sequence`, `sequence+3` or `2*sequence-1`. Affine arithmetic is enough for the
 * shapes a Mamba-2 graph produces (prepending K−1 conv columns, slicing them off again); anything
 * else (rounding up to a chunk multiple) becomes a fresh named dim that the caller names.
 */

import type { Dim, Shape } from '../onnx/shape.js';

export type { Dim, Shape };

/** A shape mismatch found while building: names the node, the input, what was expected and what came. */
export class ShapeError extends Error {
  constructor(
    readonly node: string,
    readonly input: string,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`${node}: input '${input}' expected ${expected}, got ${got}`);
    this.name = 'ShapeError';
  }
}

export const fmtShape = (s: Shape): string => `[${s.map(String).join(',')}]`;

// ---- affine dims ------------------------------------------------------------------------------

interface Affine {
  c: number;
  terms: Map<string, number>;
}

function parse(d: Dim): Affine | undefined {
  if (typeof d === 'number') return { c: d, terms: new Map() };
  const out: Affine = { c: 0, terms: new Map() };
  const parts = d
    .replace(/\s+/g, '')
    .replace(/-/g, '+-')
    .split('+')
    .filter((p) => p !== '');
  for (const part of parts) {
    const m = /^(-?)(?:(\d+)\*)?([A-Za-z_][A-Za-z0-9_.]*)$/.exec(part);
    if (m) {
      const k = (m[1] ? -1 : 1) * (m[2] ? Number(m[2]) : 1);
      out.terms.set(m[3]!, (out.terms.get(m[3]!) ?? 0) + k);
    } else if (/^-?\d+$/.test(part)) {
      out.c += Number(part);
    } else {
      return undefined; // an opaque name (e.g. from a loaded model): not an affine form
    }
  }
  return out;
}

function print(a: Affine): Dim {
  const syms = [...a.terms.entries()].filter(([, k]) => k !== 0).sort(([x], [y]) => (x < y ? -1 : 1));
  if (syms.length === 0) return a.c;
  let s = '';
  for (const [name, k] of syms) {
    const mag = Math.abs(k) === 1 ? name : `${Math.abs(k)}*${name}`;
    s += k < 0 ? `-${mag}` : s === '' ? mag : `+${mag}`;
  }
  if (a.c > 0) s += `+${a.c}`;
  if (a.c < 0) s += `${a.c}`;
  return s;
}

function combine(x: Dim, y: Dim, sign: 1 | -1): Dim | undefined {
  const a = parse(x);
  const b = parse(y);
  if (!a || !b) return undefined;
  const terms = new Map(a.terms);
  for (const [n, k] of b.terms) terms.set(n, (terms.get(n) ?? 0) + sign * k);
  return print({ c: a.c + sign * b.c, terms });
}

/** x + y, or undefined when either is opaque. */
export const dimAdd = (x: Dim, y: Dim): Dim | undefined => combine(x, y, 1);
/** x − y, or undefined when either is opaque. */
export const dimSub = (x: Dim, y: Dim): Dim | undefined => combine(x, y, -1);

/** true: certainly equal; false: certainly different; undefined: cannot tell. */
export function dimEquals(x: Dim, y: Dim): boolean | undefined {
  if (x === y) return true;
  const d = dimSub(x, y);
  if (d === undefined) return undefined;
  if (typeof d === 'number') return d === 0;
  return undefined; // two symbolic forms that differ by a symbolic amount
}

export const isStatic = (s: Shape): s is readonly number[] => s.every((d) => typeof d === 'number');

export function numel(s: Shape): number | undefined {
  return isStatic(s) ? s.reduce((a, b) => a * b, 1) : undefined;
}

/** Normalises a possibly negative axis against `rank`; throws a ShapeError when out of range. */
export function normAxis(axis: number, rank: number, node: string, input: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError(node, input, `an axis in [-${rank}, ${rank - 1}]`, String(axis));
  }
  return a;
}

/** Multidirectional (numpy) broadcasting of several shapes. */
export function broadcastShapes(shapes: readonly Shape[], node: string, names: readonly string[]): Shape {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    let from = 0;
    for (let j = 0; j < shapes.length; j++) {
      const s = shapes[j]!;
      const d = s[i - (rank - s.length)];
      if (d === undefined || d === 1) continue;
      if (dim === 1) {
        dim = d;
        from = j;
        continue;
      }
      if (dimEquals(dim, d) === false) {
        throw new ShapeError(
          node,
          names[j] ?? `#${j}`,
          `a shape broadcastable with ${names[from] ?? `#${from}`} ${fmtShape(shapes[from]!)}`,
          fmtShape(s),
        );
      }
      // prefer the static of two equal-or-unknown dims
      if (typeof dim !== 'number' && typeof d === 'number') dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** Throws unless `got` can be `expected` (symbolic dims that cannot be told apart pass). */
export function checkShape(got: Shape, expected: Shape, node: string, input: string): void {
  const bad = got.length !== expected.length || got.some((d, i) => dimEquals(d, expected[i]!) === false);
  if (bad) throw new ShapeError(node, input, fmtShape(expected), fmtShape(got));
}
