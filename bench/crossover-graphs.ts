/**
 * Graphs for bench/crossover.ts: one SSD layer (the exporter's chunked dual form) or one causal
 * attention layer of ONNX Runtime's own, applied R times in a chain, on tensors generated inside
 * the graph from a [1] seed (no host copies to time), reduced to one scalar `sum`.
 *
 *   seed [1] ─ wave ─ x / q ──► layer ──► layer ──► … (R times) ──► ReduceSum ─┐
 *            ─ wave ─ dt_r, B_r, C_r (SSD: one set per layer)  ─► ReduceSum ───┼─► sum
 *            ─ wave ─ k, v (attention: shared by the layers)   ─► ReduceSum ───┘
 *
 * The baseline graph (`apply: false`) generates and reduces exactly the same tensors but applies
 * no layer, so (t_R − t_0)/R is the time of one layer. The SSD gets fresh dt/B/C per layer (as a
 * model's layers do) so that ORT's common-subexpression elimination cannot share C·Bᵀ, the decay
 * matrices or the chunk decays between the layers of the chain.
 */
import type { ModelIR } from '../src/graph/ir.js';
import { ModelBuilder, type GraphBuilder } from '../src/graph/builder.js';
import { ONNX_DTYPE } from '../src/onnx/dtype.js';
import * as op from '../src/graph/ops.js';
import { DEFAULT_DOMAIN, MS_DOMAIN } from '../src/graph/opset.js';
import type { Shape } from '../src/onnx/shape.js';
import type { Value } from '../src/graph/value.js';
import { B, Ctx, L as SEQ } from '../src/export/blocks.js';
import { makeConfig } from '../src/export/config.js';
import { ssdChunked } from '../src/export/ssd.js';

/** The layer's shape: L sequence, H heads, P head dim, N state (SSD only). */
export interface Dims {
  L: number;
  H: number;
  P: number;
  N: number;
}

export type Segsum = 'stable' | 'diff';
export type AttnVariant = 'mha' | 'gqa' | 'onnx' | 'ops';
export type AttnDtype = 'fp16' | 'fp32';

const int = (value: number) => ({ type: 'int' as const, value });
const FREQ = [0.7548776662466927, 0.5698402909980532, 0.4142135623730951, 0.3183098861837907];

/**
 * Deterministic pseudo-random values in [−1, 1] of static shape `dims`:
 * t = seed + salt + Σ_k i_k·f_k (i_k the index along axis k), v = sin(97.3·sin(t)). The seed is
 * added first, so ORT folds only the small per-axis index vectors, never a full-size tensor.
 */
function wave(g: GraphBuilder, seed: Value, salt: number, dims: readonly number[]): Value {
  const f32 = (v: number) => g.constant('float32', [], [v]);
  let t = op.Add(g, seed, f32(salt)); // [1]
  dims.forEach((n, k) => {
    const idx = op.Range(g, f32(0), f32(n), f32(1), n); // [n]
    const axis = op.Reshape(
      g,
      idx,
      dims.map((_, j) => (j === k ? n : 1)),
    ); // [1,…,n,…,1]
    t = op.Add(g, t, op.Mul(g, axis, f32(FREQ[k % FREQ.length]! * (1 + 0.1 * k))));
  });
  return op.Sin(g, op.Mul(g, op.Sin(g, t), f32(97.3))); // dims
}

/** Static [d0,…] → [batch, sequence, …] (batch 1), the symbolic layout the exporter's graphs use. */
function toBL(g: GraphBuilder, v: Value, dims: readonly number[]): Value {
  const target: Shape = [B, SEQ, ...dims.slice(1)];
  return op.ReshapeTo(g, v, g.constant('int64', [dims.length + 1], [1, ...dims]), target);
}

/** Σ of every element of each value, as one float32 scalar. */
function total(g: GraphBuilder, vs: readonly Value[]): Value {
  const sums = vs.map((v) => {
    const v32 = v.dtype === 'float32' ? v : op.Cast(g, v, 'float32', ONNX_DTYPE.float32);
    return op.ReduceSum(
      g,
      v32,
      v.shape.map((_, k) => k),
      false,
    ); // []
  });
  return sums.reduce((a, b) => op.Add(g, a, b));
}

/** A per head: −1 … −8 (log-spaced like mamba_ssm's A_log init, squeezed to a sane decay range). */
export function ssdA(H: number): Float32Array {
  return Float32Array.from({ length: H }, (_, h) => -Math.exp((Math.log(8) * h) / Math.max(1, H - 1)));
}

export interface SsdGraphOptions {
  chunk: number;
  segsum: Segsum;
  repeat: number;
  /** false: the baseline (generation and reduction only). */
  apply: boolean;
  /** Adds outputs x, dt, Bm, Cm (layer 0's inputs) and y (the chain's output), for --check. */
  debug?: boolean;
}

/** R chained SSD layers (batch 1, G = 1, h0 = 0, fp32): y_r → x_{r+1}, fresh dt/B/C per layer. */
export function ssdGraph(d: Dims, o: SsdGraphOptions): ModelIR {
  const { L, H, P, N } = d;
  const c = makeConfig(
    { dModel: H * P, expand: 1, nLayer: 1, vocabSize: 8, headDim: P, dState: N, nGroups: 1, chunkSize: o.chunk },
    'crossover',
  );
  const m = new ModelBuilder({ name: 'crossover-ssd' });
  const g = m.graph;
  const seed = g.input('seed', 'float32', [1]);
  const ctx = new Ctx(g, c, undefined, { segsum: o.segsum });
  const A = g.constant('float32', [H], ssdA(H)); // [H]
  const h0 = op.Expand(g, g.constant('float32', [], [0]), [B, H, P, N], g.constant('int64', [4], [1, H, P, N])); // [B,H,P,N]
  const x = toBL(g, wave(g, seed, 0.5, [L, H, P]), [L, H, P]); // [B,L,H,P]  ~unit
  const side: Value[] = [];
  const layers = Array.from({ length: o.repeat }, (_, r) => {
    const dt = toBL(g, op.Mul(g, op.Sigmoid(g, wave(g, seed, 10 + 1.37 * r, [L, H])), g.constant('float32', [], [0.1])), [L, H]); // [B,L,H]  0.027…0.073
    const Bm = toBL(g, wave(g, seed, 20 + 1.37 * r, [L, 1, N]), [L, 1, N]); // [B,L,1,N]
    const Cm = toBL(g, wave(g, seed, 30 + 1.37 * r, [L, 1, N]), [L, 1, N]); // [B,L,1,N]
    side.push(dt, Bm, Cm);
    return { dt, Bm, Cm };
  });
  let y = x;
  if (o.apply) layers.forEach(({ dt, Bm, Cm }, r) => (y = g.scope(`layers.${r}`, () => ssdChunked(ctx, { x: y, dt, A, Bm, Cm, h0 }).y))); // [B,L,H,P]
  g.output(total(g, [y, ...side]), 'sum');
  if (o.debug) {
    const l0 = layers[0];
    if (!l0) throw new RangeError(`ssdGraph: debug outputs need repeat ≥ 1, got ${o.repeat}`);
    g.output(x, 'x');
    g.output(l0.dt, 'dt');
    g.output(l0.Bm, 'Bm');
    g.output(l0.Cm, 'Cm');
    g.output(y, 'y');
  }
  return m.finish();
}

export interface AttnGraphOptions {
  /** undefined: the baseline (generation and reduction only). */
  variant?: AttnVariant;
  dtype: AttnDtype;
  repeat: number;
  /** Round the generated q/k/v through float16 first (an fp32 reference for an fp16 run). */
  roundVia16?: boolean;
  /** Adds outputs q, k, v (the generated inputs) and y (the chain's output), all as float32. */
  debug?: boolean;
}

/** R chained causal self-attention layers (batch 1, MHA: H query and H key/value heads): out_r → q_{r+1}; k, v shared. */
export function attentionGraph(d: Dims, o: AttnGraphOptions): ModelIR {
  const { L, H, P } = d;
  // Attention needs opset 23; MultiHeadAttention is not in the builder's table: registered here for this model only
  const m = new ModelBuilder({ name: 'crossover-attention', opsets: { [DEFAULT_DOMAIN]: 23, [MS_DOMAIN]: 1 } });
  m.localSchemas.set('Attention', { domain: DEFAULT_DOMAIN, since: 23 });
  m.localSchemas.set(`${MS_DOMAIN}::MultiHeadAttention`, { domain: MS_DOMAIN, since: 1 });
  const g = m.graph;
  const seed = g.input('seed', 'float32', [1]);
  const T = o.dtype === 'fp16' ? 'float16' : 'float32';
  const gen = (salt: number): Value => {
    let v = wave(g, seed, salt, [L, H * P]); // [L,H·P]
    if (o.roundVia16) v = op.Cast(g, op.Cast(g, v, 'float16', ONNX_DTYPE.float16), 'float32', ONNX_DTYPE.float32);
    if (T !== 'float32') v = op.Cast(g, v, T, ONNX_DTYPE[T]);
    return toBL(g, v, [L, H * P]); // [B,L,H·P]
  };
  const [q0, k, v] = [gen(0.5), gen(1.5), gen(2.5)];
  let q = q0;
  if (o.variant) {
    const layer = LAYERS[o.variant](g, d, k, v);
    for (let r = 0; r < o.repeat; r++) q = g.scope(`layers.${r}`, () => layer(q));
  }
  g.output(total(g, [q, k, v]), 'sum');
  if (o.debug) {
    const f32 = (x: Value) => (T === 'float32' ? op.Identity(g, x) : op.Cast(g, x, 'float32', ONNX_DTYPE.float32));
    for (const [name, x] of [
      ['q', q0],
      ['k', k],
      ['v', v],
      ['y', q],
    ] as const)
      g.output(f32(x), name);
  }
  return m.finish();
}

type Layer = (q: Value) => Value;
const BLD = (H: number, P: number): Shape => [B, SEQ, H * P];

/** Each variant: k, v [B,L,H·P] fixed → a function q [B,L,H·P] ↦ causal attention output [B,L,H·P]. */
const LAYERS: Record<AttnVariant, (g: GraphBuilder, d: Dims, k: Value, v: Value) => Layer> = {
  // com.microsoft MultiHeadAttention, unpacked Q,K,V [B,L,H·P], causal through `unidirectional`
  mha:
    (g, { H, P }, k, v) =>
    (q) =>
      g.node('MultiHeadAttention', [q, k, v], {
        domain: MS_DOMAIN,
        attrs: { num_heads: int(H), unidirectional: int(1) },
        outputs: [{ dtype: q.dtype, shape: BLD(H, P) }],
      })[0]!,
  // com.microsoft GroupQueryAttention with kv_num_heads = num_heads, no past (a prompt): causal by design.
  // present_key/present_value are declared: required outputs before ORT ~1.25, and CUDA writes them unconditionally
  gqa: (g, { L, H, P }, k, v) => {
    const seqlensK = g.constant('int32', [1], [L - 1]); // [B]  total length − 1
    const totalLen = g.constant('int32', [], [L]); // []
    return (q) => {
      const present = { dtype: q.dtype, shape: [B, H, SEQ, P] };
      return g.node('GroupQueryAttention', [q, k, v, undefined, undefined, seqlensK, totalLen], {
        domain: MS_DOMAIN,
        attrs: { num_heads: int(H), kv_num_heads: int(H) },
        outputs: [{ dtype: q.dtype, shape: BLD(H, P) }, present, present],
      })[0]!;
    };
  },
  // ONNX Attention-23 on 3-D inputs (q_num_heads/kv_num_heads split the last axis), is_causal = 1
  onnx:
    (g, { H, P }, k, v) =>
    (q) =>
      g.node('Attention', [q, k, v], {
        attrs: { is_causal: int(1), kv_num_heads: int(H), q_num_heads: int(H) },
        outputs: [{ dtype: q.dtype, shape: BLD(H, P) }],
      })[0]!,
  // standard ops: softmax(q·kᵀ/√P + causal mask)·v, the L×L scores materialised per head
  ops: (g, { H, P }, k, v) => {
    const T = k.dtype;
    const heads = (x: Value, perm: number[]) => op.Transpose(g, op.Reshape(g, x, [B, SEQ, H, P]), perm);
    const kT = heads(k, [0, 2, 3, 1]); // [B,H,P,L]
    const vh = heads(v, [0, 2, 1, 3]); // [B,H,L,P]
    const i64 = (n: number) => g.constant('int64', [], [n]);
    const idx = op.Range(g, i64(0), op.Squeeze(g, op.Shape(g, k, 1, 2), [0]), i64(1), SEQ); // [L]
    const keep = op.GreaterOrEqual(g, op.Unsqueeze(g, idx, [1]), op.Unsqueeze(g, idx, [0])); // [L,L]  key ≤ query
    const f32 = (x: number) => g.constant('float32', [], [x]);
    const cast = (x: Value) => (T === 'float32' ? x : op.Cast(g, x, T, ONNX_DTYPE[T]));
    const mask = cast(op.Where(g, keep, f32(0), f32(-1e30))); // [L,L]  (−inf in fp16)
    const scale = cast(f32(1 / Math.sqrt(P)));
    return (q) => {
      const s = op.Add(g, op.Mul(g, op.MatMul(g, heads(q, [0, 2, 1, 3]), kT), scale), mask); // [B,H,L,L]
      const o = op.MatMul(g, op.Softmax(g, s, -1), vh); // [B,H,L,P]
      return op.Reshape(g, op.Transpose(g, o, [0, 2, 1, 3]), BLD(H, P)); // [B,L,H·P]
    };
  },
};

/**
 * Matmul FLOPs of one SSD layer as ssdChunked builds it (docs/model.md §2.7, group-aware layout, G = 1,
 * masked blocks counted in full because the graph multiplies them in full), Lp = C·Q, C = ⌈L/Q⌉:
 *   2·Lp·G·Q·N (C·Bᵀ, once per group) + 2·Lp·H·Q·P (M·X) + 2·Lp·H·N·P (chunk states Bᵀ·X)
 *   + 2·Lp·H·N·P (C·S_in) + 2·H·(C+1)²·N·P (chunk scan).
 */
export function ssdFlops({ L, H, P, N }: Dims, Q: number): number {
  const C = Math.ceil(L / Q);
  const Lp = C * Q;
  return 2 * Lp * Q * N + 2 * Lp * H * Q * P + 4 * Lp * H * N * P + 2 * H * (C + 1) ** 2 * N * P;
}

/** Causal attention's useful matmul FLOPs: q·kᵀ and p·v, 2·L²·H·P each, half of them below the diagonal. */
export function attentionFlops({ L, H, P }: Dims): number {
  return (2 * 2 * L * L * H * P) / 2;
}
