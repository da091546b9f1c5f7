/**
 * Seeded random weights shaped like a real checkpoint, for presets without downloaded weights and for
 * tests. Each tensor is generated on demand from its own PRNG stream, keyed by (seed, tensor key): the
 * values do not depend on read order, and only the requested tensor is ever in memory.
 */
import type { Mamba2Config } from '../package/config.js';
import { CheckpointError, type TensorInfo, type TensorStore } from './checkpoint/types.js';
import { attentionOf } from '../package/layers.js';
import { expectedTensors, type ExpectedTensor } from './weight-names.js';

/** murmur3's 32-bit finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xoshiro128** (Blackman & Vigna), state seeded by splitmix32 over (seed, FNV-1a of key). */
class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seedLo: number, seedHi: number, key: string) {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    let x = fmix32(h ^ fmix32(seedLo)) ^ fmix32(seedHi + 0x6a09e667);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      return fmix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1; // never the all-zero state
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

function fillUniform(rng: Xoshiro128, out: Float32Array, lo: number, hi: number): void {
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rng.uniform();
}

/** N(0, std²) by Marsaglia's polar method: two values per accepted pair of uniforms, no trigonometry. */
function fillNormal(rng: Xoshiro128, out: Float32Array, std: number): void {
  for (let i = 0; i < out.length; i += 2) {
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * rng.uniform() - 1;
      v = 2 * rng.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i] = u * f;
    if (i + 1 < out.length) out[i + 1] = v * f;
  }
}

/** softplus⁻¹(y) = log(exp(y) − 1), written stably as y + log(−expm1(−y)). */
const invSoftplus = (y: number): number => y + Math.log(-Math.expm1(-y));

/** Fills `out` with the tensor's values, in the ranges a trained checkpoint has (see the module doc). */
function generate(t: ExpectedTensor, c: Mamba2Config, rng: Xoshiro128, out: Float32Array): void {
  const convBound = 1 / Math.sqrt(c.dConv);
  switch (t.role) {
    case 'embedding':
    case 'lmHead':
    case 'inProj':
    case 'inProjBias':
    case 'outProjBias':
    case 'q':
    case 'k':
    case 'v':
    case 'qkv':
    case 'qkvBias':
    case 'attnOutBias':
    case 'gate':
    case 'up':
    case 'fc1':
    case 'router':
    case 'latentIn':
    case 'expertUp':
      fillNormal(rng, out, 0.02);
      return;
    case 'outProj':
    case 'attnOut':
    case 'down':
    case 'latentOut':
    case 'expertDown':
      fillNormal(rng, out, 0.02 / Math.sqrt(2 * c.nLayer));
      return;
    case 'norm':
    case 'normF':
    case 'gatedNorm':
    case 'attnNorm':
    case 'mlpNorm':
      fillUniform(rng, out, 0.95, 1.05);
      return;
    case 'attnConv':
    case 'attnConvBias': {
      const bound = 1 / Math.sqrt(attentionOf(c).convKernel);
      fillUniform(rng, out, -bound, bound);
      return;
    }
    case 'conv':
    case 'convBias':
      fillUniform(rng, out, -convBound, convBound);
      return;
    case 'D':
      fillUniform(rng, out, 0.9, 1.1);
      return;
    case 'scoreBias':
      fillUniform(rng, out, -0.05, 0.05);
      return;
    case 'aLog': // A = −exp(A_log) ∈ [−16, −1]
      for (let i = 0; i < out.length; i++) out[i] = Math.log(1 + 15 * rng.uniform());
      return;
    case 'dtBias': // softplus(dt_bias) ∈ [0.001, 0.1]
      for (let i = 0; i < out.length; i++) out[i] = invSoftplus(0.001 + 0.099 * rng.uniform());
      return;
  }
}

/** 32-bit halves of a safe integer seed (negative seeds wrap two's-complement style). */
function seedWords(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed: expected a safe integer, got ${seed}`);
  const big = BigInt.asUintN(64, BigInt(seed));
  return [Number(big & 0xffffffffn), Number(big >> 32n)];
}

/**
 * A `TensorStore` (kind 'random') holding every tensor `c` needs, under `c.format`'s key names, as F32.
 * Creating it allocates nothing; each `readFloat32` generates that one tensor afresh.
 */
export function randomWeights(c: Mamba2Config, seed: number): TensorStore {
  const [lo, hi] = seedWords(seed);
  const source = `random weights (seed ${seed})`;
  const tensors = new Map(expectedTensors(c).map((t) => [t.key, t]));
  const sorted = [...tensors.keys()].sort();
  let closed = false;
  return {
    kind: 'random',
    keys: () => [...sorted],
    info(key: string): TensorInfo | undefined {
      const t = tensors.get(key);
      return t === undefined ? undefined : { key, dtype: 'F32', shape: t.shape };
    },
    async readFloat32(key: string): Promise<Float32Array> {
      if (closed) throw new CheckpointError(source, `read of "${key}" after close()`);
      const t = tensors.get(key);
      if (t === undefined) throw new CheckpointError(source, `no tensor "${key}" (${tensors.size} tensors held)`);
      const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      generate(t, c, new Xoshiro128(lo, hi, key), out);
      return out;
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
