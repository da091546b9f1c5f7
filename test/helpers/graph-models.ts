/** Hand-built ModelIR objects for the serializer and loader tests (no builder involved). */
import type { DType } from '../../src/onnx/dtype.js';
import type { AttributeValue, ModelIR, NodeIR, TensorData, ValueInfoIR } from '../../src/graph/ir.js';
import type { Shape } from '../../src/onnx/shape.js';

export const CUSTOM_DOMAIN = 'ai.mamba2onnx';

export function f32(dims: number[], values: number[]): TensorData {
  const a = Float32Array.from(values);
  return { dtype: 'float32', dims, byteLength: a.byteLength, bytes: () => new Uint8Array(a.buffer.slice(0)) };
}

/** A tensor that claims `byteLength` bytes and refuses to load (to check planning happens first). */
export function unloadable(dims: number[]): TensorData {
  const count = dims.reduce((p, d) => p * d, 1);
  return {
    dtype: 'float32',
    dims,
    byteLength: count * 4,
    bytes: () => {
      throw new Error('bytes() must not be called');
    },
  };
}

export const vi = (name: string, dtype: DType, shape: Shape): ValueInfoIR => ({ name, dtype, shape });

export const node = (
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: Record<string, AttributeValue> = {},
  domain = '',
): NodeIR => ({ name: `/${opType}_${outputs[0]}`, opType, domain, inputs, outputs, attributes });

/** Deterministic pseudo-random values in [-1, 1). */
export function seq(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

export const W1 = seq(4 * 3, 1);
export const B1 = [0.5, -0.25, 1];
export const W2 = seq(3 * 3, 2);
export const LN_SCALE = [1, 2, 0.5];
export const LN_BIAS = [0, 0.1, -0.1];

/**
 * x [batch,4] → MatMul W1 [4,3] → Add b1 → MatMul W2 [3,3] → LayerNormalization(eps 1e-5) → y [batch,3].
 * W1 (48 B) and W2 (36 B) go external with externalThreshold 32; the 12-byte vectors stay inline.
 */
export function mlpModel(): ModelIR {
  return {
    irVersion: 10,
    producerName: 'mamba2-onnx-test',
    producerVersion: '0.0.0',
    opsetImports: { '': 21 },
    metadata: { zeta: 'last', alpha: 'first' },
    functions: [],
    graph: {
      name: 'mlp',
      inputs: [vi('x', 'float32', ['batch', 4])],
      outputs: [vi('y', 'float32', ['batch', 3])],
      initializers: [
        { name: 'w1', data: f32([4, 3], W1) },
        { name: 'b1', data: f32([3], B1) },
        { name: 'w2', data: f32([3, 3], W2) },
        { name: 'ln.scale', data: f32([3], LN_SCALE) },
        { name: 'ln.bias', data: f32([3], LN_BIAS) },
      ],
      nodes: [
        node('MatMul', ['x', 'w1'], ['h0']),
        node('Add', ['h0', 'b1'], ['h1']),
        node('MatMul', ['h1', 'w2'], ['h2']),
        node('LayerNormalization', ['h2', 'ln.scale', 'ln.bias'], ['y'], {
          axis: { type: 'int', value: -1 },
          epsilon: { type: 'float', value: 1e-5 },
        }),
      ],
      valueInfo: [vi('h1', 'float32', ['batch', 3])],
    },
  };
}

/** Reference for mlpModel on a row-major x [rows,4]. */
export function mlpReference(x: number[], rows: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const h1 = [0, 1, 2].map((j) => B1[j]! + [0, 1, 2, 3].reduce((s, k) => s + x[r * 4 + k]! * W1[k * 3 + j]!, 0));
    const h2 = [0, 1, 2].map((j) => [0, 1, 2].reduce((s, k) => s + h1[k]! * W2[k * 3 + j]!, 0));
    const mean = (h2[0]! + h2[1]! + h2[2]!) / 3;
    const v = h2.reduce((s, h) => s + (h - mean) ** 2, 0) / 3;
    out.push(...h2.map((h, j) => ((h - mean) / Math.sqrt(v + 1e-5)) * LN_SCALE[j]! + LN_BIAS[j]!));
  }
  return out;
}

/**
 * cond ? 2·x : x − 1 (If: the then-branch holds an initializer, the else-branch a Constant tensor
 * attribute), then out = ai.mamba2onnx::ScaleAdd(z, x; alpha 0.5) = alpha·z + x, whose body reads
 * `alpha` through an attribute reference. x [n] (unknown dim), cond bool [].
 */
export function controlModel(): ModelIR {
  return {
    irVersion: 10,
    producerName: 'mamba2-onnx-test',
    producerVersion: '0.0.0',
    opsetImports: { [CUSTOM_DOMAIN]: 1, '': 21 },
    metadata: {},
    graph: {
      name: 'control',
      inputs: [vi('x', 'float32', [null as unknown as string]), vi('cond', 'bool', [])],
      outputs: [vi('out', 'float32', ['n'])],
      initializers: [],
      nodes: [
        node('If', ['cond'], ['z'], {
          then_branch: {
            type: 'graph',
            value: {
              name: 'then',
              inputs: [],
              outputs: [vi('z_then', 'float32', ['n'])],
              valueInfo: [],
              initializers: [{ name: 'two', data: f32([1], [2]) }],
              nodes: [node('Mul', ['x', 'two'], ['z_then'])],
            },
          },
          else_branch: {
            type: 'graph',
            value: {
              name: 'else',
              inputs: [],
              outputs: [vi('z_else', 'float32', ['n'])],
              valueInfo: [],
              initializers: [],
              nodes: [
                node('Constant', [], ['minus_one'], { value: { type: 'tensor', value: f32([1], [-1]) } }),
                node('Add', ['x', 'minus_one'], ['z_else']),
              ],
            },
          },
        }),
        node('ScaleAdd', ['z', 'x'], ['out'], { alpha: { type: 'float', value: 0.5 } }, CUSTOM_DOMAIN),
      ],
      valueInfo: [],
    },
    functions: [
      {
        name: 'ScaleAdd',
        domain: CUSTOM_DOMAIN,
        inputs: ['X', 'Y'],
        outputs: ['Out'],
        attributes: ['alpha'],
        opsetImports: { '': 21 },
        nodes: [
          node('Constant', [], ['a'], { value_float: { type: 'ref', refName: 'alpha', refType: 'float' } }),
          node('Mul', ['X', 'a'], ['t']),
          node('Add', ['t', 'Y'], ['Out']),
        ],
      },
    ],
  };
}
