import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelBuilder, type GraphBuilder } from '../src/graph/builder.js';
import * as op from '../src/graph/ops.js';
import { ShapeError, type Dim } from '../src/graph/shape.js';
import type { Value } from '../src/graph/value.js';
import { rand, randArray, runIR } from './helpers/ort.js';

const FC_SEED = Number(process.env.FC_SEED ?? 20_260_601);

// ---- shape inference against onnxruntime ------------------------------------------------------

/** An input: concrete dims, and which of them are declared symbolic. */
interface In {
  dims: number[];
  sym: boolean[];
}
type Case =
  | { op: 'Add'; a: In; b: In }
  | { op: 'MatMul'; a: In; b: In }
  | { op: 'Reshape'; x: In; target: number[] }
  | { op: 'Concat'; xs: In[]; axis: number }
  | { op: 'Slice'; x: In; starts: number[]; ends: number[]; axes: number[] }
  | { op: 'Transpose'; x: In; perm: number[] };

const dim = fc.integer({ min: 1, max: 4 });
const flags = (n: number): fc.Arbitrary<boolean[]> => fc.array(fc.boolean(), { minLength: n, maxLength: n });
const input = (dims: number[], symOk: (d: number, i: number) => boolean = () => true): fc.Arbitrary<In> =>
  flags(dims.length).map((s) => ({ dims, sym: s.map((b, i) => b && symOk(dims[i]!, i)) }));

/** Two views of `out` for broadcasting: trailing dims, some set to 1. Only dims ≠ 1 may be symbolic. */
const bcastPair = fc.array(dim, { maxLength: 4 }).chain((out) => {
  const view = fc
    .tuple(fc.integer({ min: 0, max: out.length }), flags(out.length))
    .map(([r, ones]) => out.slice(out.length - r).map((d, i) => (ones[out.length - r + i] ? 1 : d)));
  return fc.tuple(view, view);
});
const addCase = bcastPair.chain(([a, b]) =>
  fc.record({ op: fc.constant('Add' as const), a: input(a, (d) => d !== 1), b: input(b, (d) => d !== 1) }),
);
const matmulCase = fc.tuple(bcastPair, dim, dim, dim).chain(([[ba, bb], m, k, n]) =>
  fc.record({
    op: fc.constant('MatMul' as const),
    a: input([...ba, m, k], (d, i) => i >= ba.length || d !== 1),
    b: input([...bb, k, n], (d, i) => i >= bb.length || d !== 1),
  }),
);
const reshapeCase = fc.array(dim, { minLength: 1, maxLength: 4 }).chain((dims) => {
  const n = dims.reduce((a, b) => a * b, 1);
  const divisors = Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
  // a random factorisation of n into 1–4 dims
  return fc.array(fc.constantFrom(...divisors), { minLength: 0, maxLength: 3 }).map((fs) => {
    const target: number[] = [];
    let rest = n;
    for (const f of fs)
      if (rest % f === 0) {
        target.push(f);
        rest /= f;
      }
    target.push(rest);
    return { op: 'Reshape' as const, x: { dims, sym: dims.map(() => false) }, target };
  });
});
const concatCase = fc
  .tuple(fc.array(dim, { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.nat())
  .chain(([base, sizes, ax]) => {
    const axis = (ax % (2 * base.length)) - base.length;
    const a = axis < 0 ? axis + base.length : axis;
    return fc.tuple(...sizes.map((s) => input(base.map((d, j) => (j === a ? s : d))))).map((xs) => ({ op: 'Concat' as const, xs, axis }));
  });
/**
 * Static axes: any start / end; symbolic axes: 0 ≤ start ≤ end ≤ d (the builder's stated assumption),
 * the end written as d − x, x or END. Each axis positive or negative.
 */
const sliceCase = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }).chain((dims) =>
  fc
    .tuple(
      input(dims),
      fc.shuffledSubarray(
        dims.map((_, i) => i),
        { minLength: 1 },
      ),
    )
    .chain(([x, axes]) => {
      const anyIdx = fc.oneof(fc.integer({ min: -8, max: 8 }), fc.constant(op.END));
      const range = (d: number): fc.Arbitrary<[number, number]> =>
        fc.tuple(fc.integer({ min: 0, max: d }), fc.integer({ min: 0, max: d }), fc.boolean()).chain(([p, q, neg]) => {
          const [s, e] = p <= q ? [p, q] : [q, p];
          return fc.tuple(fc.constant(s), e === d ? fc.constantFrom(e, op.END) : fc.constant(neg && e > 0 ? e - d : e));
        });
      const perAxis = axes.map((a) => fc.tuple(x.sym[a] ? range(x.dims[a]!) : fc.tuple(anyIdx, anyIdx), fc.boolean()));
      return fc.tuple(...perAxis).map((se) => ({
        op: 'Slice' as const,
        x,
        axes: axes.map((a, k) => (se[k]![1] ? a - dims.length : a)),
        starts: se.map(([[s]]) => s),
        ends: se.map(([[, e]]) => e),
      }));
    }),
);
const transposeCase = fc.array(dim, { minLength: 1, maxLength: 5 }).chain((dims) =>
  fc.record({
    op: fc.constant('Transpose' as const),
    x: input(dims),
    perm: fc.shuffledSubarray(
      dims.map((_, i) => i),
      { minLength: dims.length },
    ),
  }),
);

/** Value of a builder dim under `env` (affine forms like `2*s0+3`); undefined for a fresh name. */
function evalDim(d: Dim, env: ReadonlyMap<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  let sum = 0;
  for (const part of d
    .replace(/-/g, '+-')
    .split('+')
    .filter((p) => p !== '')) {
    const m = /^(-?)(?:(\d+)\*)?([A-Za-z_][A-Za-z0-9_.]*)$/.exec(part);
    if (m) {
      const v = env.get(m[3]!);
      if (v === undefined) return undefined;
      sum += (m[1] ? -1 : 1) * (m[2] ? Number(m[2]) : 1) * v;
    } else if (/^-?\d+$/.test(part)) sum += Number(part);
    else return undefined;
  }
  return sum;
}

/** Builds one model holding every case; returns its outputs' expected dims (undefined where unknown). */
function buildCases(cases: readonly Case[]) {
  const m = new ModelBuilder({ name: 'prop' });
  const g = m.graph;
  const env = new Map<string, number>();
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  const r = rand(cases.length);
  let nIn = 0;
  const inp = (x: In): Value => {
    const name = `x${nIn++}`;
    const shape: Dim[] = x.dims.map((d, i) => {
      if (!x.sym[i]) return d;
      const s = `s${env.size}`;
      env.set(s, d);
      return s;
    });
    feeds[name] = {
      data: randArray(
        x.dims.reduce((a, b) => a * b, 1),
        r,
      ),
      dims: x.dims,
    };
    return g.input(name, 'float32', shape);
  };
  const expected: Record<string, (number | undefined)[]> = {};
  cases.forEach((c, k) => {
    const y = applyCase(g, c, inp);
    g.output(y, `y${k}`);
    expected[`y${k}`] = y.shape.map((d) => evalDim(d, env));
  });
  return { ir: m.finish(), feeds, expected };
}

function applyCase(g: GraphBuilder, c: Case, inp: (x: In) => Value): Value {
  switch (c.op) {
    case 'Add':
      return op.Add(g, inp(c.a), inp(c.b));
    case 'MatMul':
      return op.MatMul(g, inp(c.a), inp(c.b));
    case 'Reshape':
      return op.Reshape(g, inp(c.x), c.target);
    case 'Concat':
      return op.Concat(g, c.xs.map(inp), c.axis);
    case 'Slice':
      return op.Slice(g, inp(c.x), c.starts, c.ends, c.axes);
    case 'Transpose':
      return op.Transpose(g, inp(c.x), c.perm);
  }
}

describe('shape inference matches onnxruntime', () => {
  it('random valid Add / MatMul / Reshape / Concat / Slice / Transpose (static and symbolic dims)', async () => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(addCase, matmulCase, reshapeCase, concatCase, sliceCase, transposeCase), async (cases) => {
        const { ir, feeds, expected } = buildCases(cases);
        const out = await runIR(ir, feeds);
        for (const [name, dims] of Object.entries(expected)) {
          const got = [...out[name]!.dims];
          expect(got.length, name).toBe(dims.length);
          dims.forEach((d, i) => {
            if (d === undefined) return; // a fresh symbolic name: no claim to check
            expect(got[i], `${name} dim ${i}: builder ${JSON.stringify(dims)}, onnxruntime ${JSON.stringify(got)}`).toBe(d);
            compared++;
          });
        }
      }),
      { seed: FC_SEED, numRuns: 30 },
    );
    expect(compared).toBeGreaterThan(300);
  });
});

// ---- invalid shapes: ShapeError exactly when the op is invalid ----------------------------------

const anyShape = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 });

function broadcastable(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 1; i <= Math.min(a.length, b.length); i++) {
    const [x, y] = [a[a.length - i]!, b[b.length - i]!];
    if (x !== y && x !== 1 && y !== 1) return false;
  }
  return true;
}
const isPerm = (p: readonly number[], r: number): boolean => p.length === r && [...p].sort((x, y) => x - y).every((v, i) => v === i);
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const inRange = (a: number, r: number): boolean => Number.isInteger(a) && a >= -r && a < r;
const norm = (a: number, r: number): number => (a < 0 ? a + r : a);

/** [build it, is it valid] for one random (probably invalid) op on static shapes. */
const invalidCase: fc.Arbitrary<{ what: string; valid: boolean; run: (g: GraphBuilder) => unknown }> = fc.oneof(
  fc.tuple(anyShape, anyShape).map(([a, b]) => ({
    what: `Add ${JSON.stringify([a, b])}`,
    valid: broadcastable(a, b),
    run: (g: GraphBuilder) => op.Add(g, g.input('a', 'float32', a), g.input('b', 'float32', b)),
  })),
  fc.tuple(anyShape, anyShape).map(([a, b]) => ({
    what: `MatMul ${JSON.stringify([a, b])}`,
    valid: a.length >= 2 && b.length >= 2 && a.at(-1) === b.at(-2) && broadcastable(a.slice(0, -2), b.slice(0, -2)),
    run: (g: GraphBuilder) => op.MatMul(g, g.input('a', 'float32', a), g.input('b', 'float32', b)),
  })),
  fc.tuple(anyShape, fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 5 })).map(([x, perm]) => ({
    what: `Transpose ${JSON.stringify([x, perm])}`,
    valid: isPerm(perm, x.length),
    run: (g: GraphBuilder) => op.Transpose(g, g.input('x', 'float32', x), perm),
  })),
  fc.tuple(anyShape, fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 4 })).map(([x, t]) => ({
    what: `Reshape ${JSON.stringify([x, t])}`,
    valid: prod(x) === prod(t),
    run: (g: GraphBuilder) => op.Reshape(g, g.input('x', 'float32', x), t),
  })),
  fc.tuple(fc.array(anyShape, { minLength: 1, maxLength: 3 }), fc.integer({ min: -5, max: 5 })).map(([xs, axis]) => {
    const r = xs[0]!.length;
    const a = norm(axis, r);
    const valid = r > 0 && inRange(axis, r) && xs.every((x) => x.length === r && x.every((d, j) => j === a || d === xs[0]![j]));
    return {
      what: `Concat ${JSON.stringify([xs, axis])}`,
      valid,
      run: (g: GraphBuilder) =>
        op.Concat(
          g,
          xs.map((x, i) => g.input(`x${i}`, 'float32', x)),
          axis,
        ),
    };
  }),
  // distinct axes (duplicates are a known gap, below), each in range or not
  anyShape
    .chain((x) =>
      fc.tuple(
        fc.constant(x),
        fc.uniqueArray(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 3, selector: (a) => norm(a, x.length) }),
      ),
    )
    .map(([x, axes]) => {
      const valid = axes.every((a) => inRange(a, x.length)) && new Set(axes.map((a) => norm(a, x.length))).size === axes.length;
      return {
        what: `Slice ${JSON.stringify([x, axes])}`,
        valid,
        run: (g: GraphBuilder) =>
          op.Slice(
            g,
            g.input('x', 'float32', x),
            axes.map(() => 0),
            axes.map(() => op.END),
            axes,
          ),
      };
    }),
);

describe('invalid shapes', () => {
  it('throw a ShapeError exactly when the op is invalid, never another exception', () => {
    let invalid = 0;
    fc.assert(
      fc.property(invalidCase, (c) => {
        const g = new ModelBuilder({ name: 'bad' }).graph;
        let err: unknown;
        try {
          c.run(g);
        } catch (e) {
          err = e;
        }
        if (err !== undefined && !(err instanceof ShapeError)) throw new Error(`${c.what}: ${String(err)} (expected a ShapeError)`);
        expect(err === undefined, `${c.what}: ${err === undefined ? 'accepted' : String(err)}`).toBe(c.valid);
        if (!c.valid) invalid++;
      }),
      { seed: FC_SEED, numRuns: 3000 },
    );
    expect(invalid).toBeGreaterThan(500);
  });
});

/** One op call on a fresh graph: the exception it throws, or undefined. */
function thrown(run: (g: GraphBuilder) => unknown): unknown {
  try {
    run(new ModelBuilder({ name: 'gap' }).graph);
    return undefined;
  } catch (e) {
    return e;
  }
}

/** Invalid calls the properties above once found accepted (or failing with another error): now ShapeErrors. */
describe('invalid calls found by the properties are refused with a ShapeError', () => {
  const refused = (run: (g: GraphBuilder) => unknown): void => expect(thrown(run)).toBeInstanceOf(ShapeError);
  it('Slice with a repeated axis ([0, -2] on rank 2) is accepted (onnxruntime refuses it)', () => {
    refused((g) => op.Slice(g, g.input('x', 'float32', [3, 4]), [0, 0], [1, 1], [0, -2]));
  });
  it('Slice with fewer starts than axes gives a NaN dim', () => {
    refused((g) => op.Slice(g, g.input('x', 'float32', [3, 4]), [], [1], [0]));
  });
  it('Concat of no inputs throws a TypeError', () => refused((g) => op.Concat(g, [], 0)));
  it('Reshape to negative dims whose product matches ([-1, -6] for 6 elements) is accepted', () => {
    refused((g) => op.Reshape(g, g.input('x', 'float32', [2, 3]), [-1, -6]));
  });
  it('Reshape to a fractional dim throws a RangeError from BigInt conversion', () => {
    refused((g) => op.Reshape(g, g.input('x', 'float32', [2, 3]), [1.5, 4]));
  });
});
