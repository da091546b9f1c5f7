/** The builder: build-time shape errors, opset checks, affine dims, scoping, functions, determinism. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rand, randArray, runIR } from '../../test/helpers/ort.js';
import { ModelBuilder } from './builder.js';
import * as op from './ops.js';
import { PROJECT_DOMAIN } from './opset.js';
import { saveModel } from './serialize.js';
import { dimAdd, dimEquals, dimSub, ShapeError } from './shape.js';

describe('shape inference', () => {
  it('a MatMul with mismatched inner dims names the node and the input, at build time', () => {
    const m = new ModelBuilder({ name: 't' });
    const g = m.graph;
    const a = g.input('a', 'float32', ['B', 'L', 64]);
    const b = g.input('b', 'float32', [32, 16]);
    const err = (() => {
      try {
        g.scope('layers.3', () => g.scope('mixer', () => g.scope('in_proj', () => op.MatMul(g, a, b))));
      } catch (e) {
        return e as ShapeError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.node).toBe('/layers.3/mixer/in_proj/MatMul');
    expect(err.input).toBe('b');
    expect(err.message).toMatch(/expected \[…,64,N\].*got \[32,16\]/);
  });

  it('broadcast, dtype and Split errors', () => {
    const g = new ModelBuilder({ name: 't' }).graph;
    const x = g.input('x', 'float32', ['B', 5, 4]);
    expect(() => op.Add(g, x, g.input('y', 'float32', [3, 4]))).toThrow(/Add: input 'y' expected a shape broadcastable/);
    expect(() => op.Add(g, x, g.input('i', 'int64', [4]))).toThrow(/dtype float32/);
    expect(() => op.Split(g, x, [2, 3], -1)).toThrow(/Split: input 'x' expected dim 2 = 5/);
    expect(() => op.Reshape(g, x, ['B', 7])).not.toThrow(); // symbolic B: element count unknown
    expect(() => op.Reshape(g, g.input('s', 'float32', [2, 6]), [5, 2])).toThrow(/10 elements/);
    expect(() => op.Transpose(g, x, [0, 0, 1])).toThrow(/permutation/);
  });

  it('affine symbolic dims follow concat, conv and slice', () => {
    expect(dimAdd('sequence', 3)).toBe('sequence+3');
    expect(dimSub('sequence+3', 3)).toBe('sequence');
    expect(dimEquals('sequence+1', 'sequence')).toBe(false);
    expect(dimEquals('a', 'b')).toBeUndefined();
    const g = new ModelBuilder({ name: 't' }).graph;
    const x = g.input('x', 'float32', ['B', 6, 'sequence']);
    const past = g.input('p', 'float32', ['B', 6, 3]);
    const win = op.Concat(g, [past, x], 2);
    expect(win.shape).toEqual(['B', 6, 'sequence+3']);
    const w = g.input('w', 'float32', [6, 1, 4]);
    expect(op.Conv1d(g, win, w, undefined, { group: 6 }).shape).toEqual(['B', 6, 'sequence']);
    expect(op.Slice(g, win, [-3], [op.END], [2]).shape).toEqual(['B', 6, 3]);
  });
});

describe('opsets', () => {
  it('refuses ops the imports do not cover, and unknown ops', () => {
    const m = new ModelBuilder({ name: 't', opsets: { '': 13 } });
    const g = m.graph;
    const x = g.input('x', 'float32', [2, 3]);
    expect(() => op.Split(g, x, [1, 2], 1)).toThrow(/Split' needs ai.onnx opset ≥ 18, the model imports 13/);
    expect(() => g.node('NoSuchOp', [x], { outputs: [{ dtype: 'float32', shape: [2, 3] }] })).toThrow(
      /not in the builder's operator table/,
    );
    expect(() => g.node('MatMulNBits', [x], { domain: 'com.microsoft', outputs: [{ dtype: 'float32', shape: [2, 3] }] })).toThrow(
      /needs an opset import for domain 'com.microsoft'/,
    );
  });
});

describe('model-local functions and If', () => {
  it('a custom-domain function and an If run in onnxruntime', async () => {
    const m = new ModelBuilder({ name: 't', opsets: { [PROJECT_DOMAIN]: 1 } });
    m.defineFunction(PROJECT_DOMAIN, 'SiluTimes2', [{ name: 'x', dtype: 'float32', shape: ['N'] }], [], (fg, [x]) => [
      op.Mul(fg, op.Mul(fg, x!, op.Sigmoid(fg, x!)), fg.constant('float32', [], [2])),
    ]);
    const g = m.graph;
    const x = g.input('x', 'float32', ['N']);
    const [y] = g.node('SiluTimes2', [x], { domain: PROJECT_DOMAIN, outputs: [{ dtype: 'float32', shape: ['N'] }] });
    const n = op.Shape(g, x);
    const isOne = op.Squeeze(g, op.Equal(g, n, g.constant('int64', [1], [1])), [0]);
    const [z] = op.If(
      g,
      isOne,
      [['N']],
      (sg) => [op.Neg(sg, y!)],
      (sg) => [op.Identity(sg, y!)],
    );
    g.output(z!, 'z');
    const r = rand(1);
    const xs = randArray(5, r);
    const out = await runIR(m.finish(), { x: { data: xs, dims: [5] } });
    xs.forEach((v, i) => expect(out.z!.data[i]).toBeCloseTo((2 * v) / (1 + Math.exp(-v)), 5));
    const one = await runIR(m.finish(), { x: { data: Float32Array.of(1), dims: [1] } });
    expect(one.z!.data[0]).toBeCloseTo(-2 / (1 + Math.exp(-1)), 5);
  });
});

describe('serialization', () => {
  it('the same graph gives byte-identical files', async () => {
    const build = () => {
      const m = new ModelBuilder({ name: 't' });
      const g = m.graph;
      const x = g.input('x', 'float32', ['B', 4]);
      const w = g.constant(
        'float32',
        [4, 4],
        Array.from({ length: 16 }, (_, i) => i / 7),
      );
      g.output(
        g.scope('proj', () => op.MatMul(g, x, w)),
        'y',
      );
      return m.finish();
    };
    const d1 = mkdtempSync(join(tmpdir(), 'm2o-det-'));
    const d2 = mkdtempSync(join(tmpdir(), 'm2o-det-'));
    try {
      await saveModel(build(), d1, { externalData: 'never' });
      await saveModel(build(), d2, { externalData: 'never' });
      expect(Buffer.compare(readFileSync(join(d1, 'model.onnx')), readFileSync(join(d2, 'model.onnx')))).toBe(0);
    } finally {
      rmSync(d1, { recursive: true, force: true });
      rmSync(d2, { recursive: true, force: true });
    }
  });
});
