/**
 * Weight conversion for the fp16, int8 and int4 exports, one tensor at a time:
 *
 *  - float32 → float16 bits (round to nearest even);
 *  - MatMulNBits block quantization of a projection W [N,K] (as stored, out × in): blocks of
 *    `blockSize` along K, asymmetric (min/max, zero included), uint8 zero points; K is padded up to
 *    a whole block with the zero point (the padding dequantizes to 0 and ORT never reads A there);
 *  - symmetric int8 rows for the embedding's dequantizing Gather (one scale per block of a row).
 *
 * Layouts are ORT's (docs/ContribOperators.md `com.microsoft.MatMulNBits`): B uint8 [N, ⌈K/bs⌉, bs·bits/8],
 * values along K low bits first; scales [N·⌈K/bs⌉]; zero points [N, ⌈⌈K/bs⌉·bits/8⌉], packed like B.
 */

export type NBits = 4 | 8;

export interface BlockQuantized {
  N: number;
  K: number;
  bits: NBits;
  blockSize: number;
  /** uint8 [N, kBlocks, blockSize·bits/8] */
  b: Uint8Array;
  /** float32 [N·kBlocks] */
  scales: Float32Array;
  /** uint8 [N, zpCols] (two per byte for 4 bits, low nibble first) */
  zeroPoints: Uint8Array;
}

/** Checks a MatMulNBits block size: a power of two, at least 16 (ORT's rule). */
export function checkBlockSize(bs: number, what = 'blockSize'): void {
  if (!Number.isSafeInteger(bs) || bs < 16 || bs > 4096 || (bs & (bs - 1)) !== 0) {
    throw new RangeError(`${what}: expected a power of two in [16, 4096], got ${bs}`);
  }
}

export const kBlocksOf = (K: number, bs: number): number => Math.ceil(K / bs);
export const zpColsOf = (K: number, bs: number, bits: NBits): number => Math.ceil((kBlocksOf(K, bs) * bits) / 8);

/** Scale and zero point of one block w[a..b): round-to-nearest over [min(0,lo), max(0,hi)]. */
function blockParams(w: Float32Array, a: number, b: number, qmax: number): { scale: number; zp: number } {
  let lo = 0;
  let hi = 0;
  for (let k = a; k < b; k++) {
    const v = w[k]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi - lo === 0) return { scale: 0, zp: (qmax + 1) >> 1 };
  const scale = (hi - lo) / qmax;
  return { scale, zp: Math.min(qmax, Math.max(0, Math.round(-lo / scale))) };
}

/** Blockwise asymmetric quantization of W [N,K] (row-major, rows = outputs) for MatMulNBits. */
export function quantizeBlockwise(w: Float32Array, N: number, K: number, bits: NBits, blockSize: number): BlockQuantized {
  checkBlockSize(blockSize);
  if (w.length !== N * K) throw new RangeError(`quantizeBlockwise: expected ${N}·${K} = ${N * K} values, got ${w.length}`);
  const kb = kBlocksOf(K, blockSize);
  const blob = (blockSize * bits) / 8;
  const qmax = (1 << bits) - 1;
  const zpCols = zpColsOf(K, blockSize, bits);
  const b = new Uint8Array(N * kb * blob);
  const scales = new Float32Array(N * kb);
  const zeroPoints = new Uint8Array(N * zpCols);
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let j = 0; j < kb; j++) {
      const k0 = j * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      const { scale, zp } = blockParams(w, row + k0, row + k1, qmax);
      const inv = scale > 0 ? 1 / scale : 0;
      scales[n * kb + j] = scale;
      if (bits === 8) zeroPoints[n * zpCols + j] = zp;
      else zeroPoints[n * zpCols + (j >> 1)]! |= zp << ((j & 1) * 4);
      const base = (n * kb + j) * blob;
      for (let e = 0; e < blockSize; e++) {
        const k = k0 + e;
        const q = k < k1 ? Math.min(qmax, Math.max(0, Math.round(w[row + k]! * inv) + zp)) : zp;
        if (bits === 8) b[base + e] = q;
        else b[base + (e >> 1)]! |= q << ((e & 1) * 4);
      }
    }
  }
  return { N, K, bits, blockSize, b, scales, zeroPoints };
}

/** The weights MatMulNBits computes with: (q − zp)·scale, W [N,K] as float32 (tests, error budgets). */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const { N, K, bits, blockSize } = q;
  const kb = kBlocksOf(K, blockSize);
  const blob = (blockSize * bits) / 8;
  const zpCols = zpColsOf(K, blockSize, bits);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const j = Math.floor(k / blockSize);
      const e = k % blockSize;
      const byte = q.b[(n * kb + j) * blob + (bits === 8 ? e : e >> 1)]!;
      const v = bits === 8 ? byte : (byte >> ((e & 1) * 4)) & 15;
      const zb = q.zeroPoints[n * zpCols + (bits === 8 ? j : j >> 1)]!;
      const zp = bits === 8 ? zb : (zb >> ((j & 1) * 4)) & 15;
      out[n * K + k] = (v - zp) * q.scales[n * kb + j]!;
    }
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of one float (round to nearest even; overflow → ±Inf, NaN kept). */
export function float16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1) === 1)) out++; // may carry into the exponent: correct
  return sign | out;
}

/** float32 → float16 bits; throws (naming `what`) when a value is beyond fp16's ±65504. */
export function toFloat16(a: Float32Array, what: string): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const h = float16Bits(a[i]!);
    if ((h & 0x7c00) === 0x7c00) throw new RangeError(`${what}: value ${a[i]} at flat index ${i} does not fit float16 (|v| ≤ 65504)`);
    out[i] = h;
  }
  return out;
}
