/**
 * Typed wrapper for ONNX Runtime's `com.microsoft` MatMulNBits: y = A · dequant(B)ᵀ (+ bias), the
 * weight-only block-quantized product (contrib_defs.cc `MatMulNBits`, docs/ContribOperators.md).
 *
 *   A [..., K] (float32|float16)  B uint8 [N, ⌈K/bs⌉, bs·bits/8]  scales [N, ⌈K/bs⌉] or [N·⌈K/bs⌉] (A's dtype)
 *   zero_points uint8 [N, ⌈⌈K/bs⌉·bits/8⌉] (packed like B; absent: 2^(bits−1))  bias [N]  → Y [..., N]
 *
 * Dequantized weight of row n, column k: (q − zp) · scale of block ⌊k/bs⌋. Values are packed
 * along K, low bits first (4-bit: element 2i in the low nibble of byte i).
 */
import type { GraphBuilder } from './builder.js';
import { fmtShape, ShapeError } from './shape.js';
import { MS_DOMAIN } from './opset.js';
import type { Value } from './value.js';

const int = (value: number) => ({ type: 'int' as const, value });

export interface MatMulNBitsOptions {
  K: number;
  N: number;
  bits: 4 | 8;
  blockSize: number;
  /** Minimum accuracy of A's internal computation: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8. */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

export function MatMulNBits(
  g: GraphBuilder,
  a: Value,
  b: Value,
  scales: Value,
  zeroPoints: Value | undefined,
  bias: Value | undefined,
  o: MatMulNBitsOptions,
): Value {
  const name = g.nodeName('MatMulNBits');
  if (a.dtype !== 'float32' && a.dtype !== 'float16') throw new ShapeError(name, a.name, 'dtype float32 or float16', a.dtype);
  if (a.rank < 2) throw new ShapeError(name, a.name, 'rank ≥ 2 [..., K]', fmtShape(a.shape));
  if (a.shape[a.rank - 1] !== o.K) throw new ShapeError(name, a.name, `last dim K = ${o.K}`, fmtShape(a.shape));
  if (!(o.blockSize >= 16 && (o.blockSize & (o.blockSize - 1)) === 0))
    throw new ShapeError(name, 'block_size', 'a power of 2 ≥ 16', String(o.blockSize));
  const kBlocks = Math.ceil(o.K / o.blockSize);
  const blob = (o.blockSize * o.bits) / 8;
  const wantB = [o.N, kBlocks, blob];
  if (b.dtype !== 'uint8' || fmtShape(b.shape) !== fmtShape(wantB))
    throw new ShapeError(name, b.name, `uint8 ${fmtShape(wantB)}`, `${b.dtype} ${fmtShape(b.shape)}`);
  const sShape = fmtShape(scales.shape);
  if (scales.dtype !== a.dtype || (sShape !== fmtShape([o.N * kBlocks]) && sShape !== fmtShape([o.N, kBlocks]))) {
    throw new ShapeError(name, scales.name, `${a.dtype} [${o.N * kBlocks}] or [${o.N},${kBlocks}]`, `${scales.dtype} ${sShape}`);
  }
  if (zeroPoints) {
    const want = [o.N, Math.ceil((kBlocks * o.bits) / 8)];
    if (zeroPoints.dtype !== 'uint8' || fmtShape(zeroPoints.shape) !== fmtShape(want)) {
      throw new ShapeError(name, zeroPoints.name, `uint8 ${fmtShape(want)}`, `${zeroPoints.dtype} ${fmtShape(zeroPoints.shape)}`);
    }
  }
  if (bias && (bias.dtype !== a.dtype || fmtShape(bias.shape) !== fmtShape([o.N]))) {
    throw new ShapeError(name, bias.name, `${a.dtype} [${o.N}]`, `${bias.dtype} ${fmtShape(bias.shape)}`);
  }
  const inputs = [a, b, scales, zeroPoints, undefined, bias];
  while (inputs[inputs.length - 1] === undefined) inputs.pop(); // no trailing empty names
  return g.node('MatMulNBits', inputs, {
    domain: MS_DOMAIN,
    attrs: {
      K: int(o.K),
      N: int(o.N),
      bits: int(o.bits),
      block_size: int(o.blockSize),
      accuracy_level: o.accuracyLevel ? int(o.accuracyLevel) : undefined,
    },
    outputs: [{ dtype: a.dtype, shape: [...a.shape.slice(0, -1), o.N] }],
  })[0]!;
}
