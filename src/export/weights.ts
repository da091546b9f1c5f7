/**
 * Checkpoint tensors → lazy initializers. Each initializer keeps its checkpoint key and holds the
 * tensor as stored (no transposes: projections use Gemm with transB, the tied lm_head reads the
 * embedding). Data is read from the store only when the serializer writes it.
 *
 * Derived values are computed in the graph, next to their use, where ORT folds them once at
 * session start: A = −exp(A_log) (docs/model.md §1.2 step 5, fp32), the conv weight's (Cdim,1,K) → (Cdim,K).
 *
 * The dtype policy (`--dtype`): the embedding, lm_head and every projection follow it (in_proj,
 * out_proj, a hybrid's attention, MLP, latent and expert projections; the experts of a layer stacked
 * into one matrix each way, stackSource).
 *   fp16       stored as float16 under their own key;
 *   int8/int4  MatMulNBits tensors `<key>_Q<bits>`, `<key>_scales`, `<key>_zero_points` (quantize.ts),
 *              converted one tensor at a time while the serializer writes; a tied lm_head and the
 *              embedding share them (the embedding dequantizes the gathered rows: blocks.ts `embed`).
 * conv, A_log, dt_bias, D, biases, every norm weight, the MoE router and its score bias stay float32
 * (quantizing them hurts Mamba; a rounded router can pick other experts).
 */
import type { GraphBuilder } from '../graph/builder.js';
import type { TensorData } from '../graph/ir.js';
import { lazyTensor } from '../graph/tensor.js';
import type { Value } from '../graph/value.js';
import type { EmbeddingWeight, LinearWeight } from './blocks.js';
import type { TensorStore } from './checkpoint/types.js';
import type { Mamba2Config } from '../package/config.js';
import type { WeightDType } from '../package/meta.js';
import { type BlockQuantized, checkBlockSize, kBlocksOf, type NBits, quantizeBlockwise, toFloat16, zpColsOf } from './quantize.js';
import type { ExpertStack } from './families/types.js';
import { weightKeys } from './weight-names.js';

/** How the projection and embedding weights are stored. */
export interface WeightPlan {
  dtype: WeightDType;
  /** MatMulNBits block size along K (int8/int4), a power of two ≥ 16. */
  blockSize: number;
  /** int8/int4: store the embedding quantized too (default true); false keeps it float32. */
  quantizeEmbedding?: boolean;
  /** MatMulNBits `accuracy_level` (0 unset = float32 activations; 4 lets the CPU quantize A to int8). */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

export const DEFAULT_BLOCK_SIZE = 32;
export const FP32_PLAN: WeightPlan = { dtype: 'fp32', blockSize: DEFAULT_BLOCK_SIZE };
const BITS: Partial<Record<WeightDType, NBits>> = { int8: 8, int4: 4 };

export interface LayerWeights {
  norm: Value; // [D]
  inProj: LinearWeight; // [F,D]
  inProjBias: Value | undefined; // [F]
  conv: Value; // [Cdim,1,K]
  convBias: Value | undefined; // [Cdim]
  dtBias: Value; // [H]
  aLog: Value; // [H]
  D: Value; // [H] or [H·P]
  gatedNorm: Value; // [DI]
  outProj: LinearWeight; // [D,DI]
  outProjBias: Value | undefined; // [D]
}

export interface ModelWeights {
  embedding: EmbeddingWeight; // [V,D]
  normF: Value; // [D]
  lmHead: LinearWeight; // [V,D] (the embedding's tensors when tied and stored alike)
  layers: LayerWeights[];
}

/** The tensor's float32 values, refused when any is not finite. */
async function readChecked(store: TensorStore, key: string): Promise<Float32Array> {
  const a = await store.readFloat32(key);
  const bad = a.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`checkpoint tensor '${key}' holds ${a[bad]} at flat index ${bad}: refusing to export non-finite weights`);
  return a;
}

const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function infoOf(store: TensorStore, key: string): readonly number[] {
  const info = store.info(key);
  if (!info) throw new Error(`checkpoint has no tensor '${key}'`);
  return info.shape;
}

/** Where an initializer's float32 values come from: one checkpoint tensor, or several combined (stacked experts). */
interface Source {
  readonly label: string;
  readonly shape: readonly number[];
  read(): Promise<Float32Array>;
}

const keySource = (store: TensorStore, key: string): Source => ({
  label: `checkpoint tensor '${key}'`,
  shape: infoOf(store, key),
  read: () => readChecked(store, key),
});

/**
 * All experts of a layer as one matrix (docs/model.md §1.5), so that one product serves every
 * expert and one Gather of whole rows picks the chosen ones:
 *   'rows'   each expert's [R, C] (up) stacked into [E·R, C] (a fused [E, R, C] tensor already is
 *            that, byte for byte);
 *   'rowsT'  each expert's [C, F] (down) transposed and stacked, [E·F, C]: the weighted hidden
 *            states of all experts, concatenated, times this matrix (dense storage);
 *   'cols'   the same experts side by side, [C, E·F], the [N, K] layout MatMulNBits needs (int8/int4).
 */
export type StackLayout = 'rows' | 'rowsT' | 'cols';

function stackSource(store: TensorStore, s: ExpertStack, E: number, layout: StackLayout): Source {
  const first = infoOf(store, s.parts[0]!);
  const [rows, cols] = (s.parts.length === 1 ? first.slice(1) : first) as [number, number];
  return {
    label: `the stacked experts '${s.name}'`,
    shape: layout === 'rows' ? [E * rows, cols] : layout === 'rowsT' ? [E * cols, rows] : [rows, E * cols],
    async read() {
      const per = rows * cols;
      const parts =
        s.parts.length === 1
          ? await readChecked(store, s.parts[0]!).then((a) => Array.from({ length: E }, (_, e) => a.subarray(e * per, (e + 1) * per)))
          : await Promise.all(s.parts.map((k) => readChecked(store, k)));
      const out = new Float32Array(E * per);
      parts.forEach((p, e) => {
        if (layout === 'rows') out.set(p, e * per);
        else if (layout === 'cols') for (let r = 0; r < rows; r++) out.set(p.subarray(r * cols, (r + 1) * cols), r * E * cols + e * cols);
        else for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[(e * cols + c) * rows + r] = p[r * cols + c]!;
      });
      return out;
    },
  };
}

/** A float32 tensor read when asked, as bytes; the array is dropped after writing. */
function storeTensor(src: Source): TensorData {
  return lazyTensor('float32', src.shape, async () => asBytes(await src.read()));
}

/** The tensor as float16 bits, converted when the serializer asks. */
function storeTensorF16(src: Source): TensorData {
  return lazyTensor('float16', src.shape, async () => asBytes(toFloat16(await src.read(), src.label)));
}

/**
 * MatMulNBits tensors of a [N,K] weight: B, scales, zero points as three lazy tensors sharing one
 * quantization (done on the first read, dropped once all three are written).
 */
function storeTensorNBits(
  src: Source,
  bits: NBits,
  blockSize: number,
): { N: number; K: number; b: TensorData; scales: TensorData; zeroPoints: TensorData } {
  const shape = src.shape;
  if (shape.length !== 2) throw new Error(`${src.label}: expected a 2-D weight to quantize, got shape [${shape.join(',')}]`);
  const [N, K] = shape as [number, number];
  const kb = kBlocksOf(K, blockSize);
  let pending: Promise<BlockQuantized> | undefined;
  let taken = 0;
  const part = (pick: (q: BlockQuantized) => ArrayBufferView) => async () => {
    pending ??= src.read().then((w) => quantizeBlockwise(w, N, K, bits, blockSize));
    const q = await pending;
    if (++taken === 3) [pending, taken] = [undefined, 0];
    return asBytes(pick(q));
  };
  return {
    N,
    K,
    b: lazyTensor(
      'uint8',
      [N, kb, (blockSize * bits) / 8],
      part((q) => q.b),
    ),
    scales: lazyTensor(
      'float32',
      [N, kb],
      part((q) => q.scales),
    ),
    zeroPoints: lazyTensor(
      'uint8',
      [N, zpColsOf(K, blockSize, bits)],
      part((q) => q.zeroPoints),
    ),
  };
}

/** Declares checkpoint tensors as initializers of a graph, following a WeightPlan. */
export interface Declarer {
  /** Kept float32 (norms, conv, A_log, dt_bias, D, biases). */
  init(key: string): Value;
  opt(key: string | undefined): Value | undefined;
  /** A projection: float32, float16 or MatMulNBits per the plan. */
  proj(key: string): LinearWeight;
  /**
   * All experts' up or down projections of a layer as one matrix (stackSource), stored per the plan;
   * `transposed`: a dense down projection is [E·F, Din] ('rowsT'), a quantized one [Din, E·F].
   */
  experts(s: ExpertStack, nExperts: number, part: 'up' | 'down'): { w: LinearWeight; transposed: boolean };
}

function weightDeclarer(g: GraphBuilder, store: TensorStore, plan: WeightPlan): Declarer {
  const bits = BITS[plan.dtype];
  if (bits) checkBlockSize(plan.blockSize, 'blockSize');
  const init = (key: string) => g.initializer(key, storeTensor(keySource(store, key)));
  const opt = (key: string | undefined) => (key === undefined ? undefined : init(key));
  const projFrom = (key: string, src: Source): LinearWeight => {
    if (plan.dtype === 'fp16') return { kind: 'dense', w: g.initializer(key, storeTensorF16(src)) };
    if (!bits) return { kind: 'dense', w: g.initializer(key, storeTensor(src)) };
    const t = storeTensorNBits(src, bits, plan.blockSize);
    return {
      kind: 'nbits',
      N: t.N,
      K: t.K,
      bits,
      blockSize: plan.blockSize,
      accuracyLevel: plan.accuracyLevel ?? 0,
      b: g.initializer(`${key}_Q${bits}`, t.b),
      scales: g.initializer(`${key}_scales`, t.scales),
      zeroPoints: g.initializer(`${key}_zero_points`, t.zeroPoints),
    };
  };
  const proj = (key: string): LinearWeight => projFrom(key, keySource(store, key));
  const experts = (s: ExpertStack, E: number, part: 'up' | 'down'): { w: LinearWeight; transposed: boolean } => {
    const layout: StackLayout = part === 'up' ? 'rows' : bits ? 'cols' : 'rowsT';
    return { w: projFrom(s.name, stackSource(store, s, E, layout)), transposed: layout === 'rowsT' };
  };
  return { init, opt, proj, experts };
}

/** The tensors of Mamba-2 layer i. */
export function declareMambaLayer(d: Declarer, c: Mamba2Config, i: number): LayerWeights {
  const k = weightKeys(c, i).layer;
  return {
    norm: d.init(k.norm),
    inProj: d.proj(k.inProj),
    inProjBias: d.opt(k.inProjBias),
    conv: d.init(k.conv),
    convBias: d.opt(k.convBias),
    dtBias: d.init(k.dtBias),
    aLog: d.init(k.aLog),
    D: d.init(k.D),
    gatedNorm: d.init(k.gatedNorm),
    outProj: d.proj(k.outProj),
    outProjBias: d.opt(k.outProjBias),
  };
}

/**
 * Declares every weight of the model as an initializer of `g`, in checkpoint order of use:
 * embedding, layers (each by `layer`), norm_f, lm_head.
 */
export function declareModelWeights<L>(
  g: GraphBuilder,
  c: Mamba2Config,
  store: TensorStore,
  plan: WeightPlan,
  layer: (d: Declarer, i: number) => L,
): Omit<ModelWeights, 'layers'> & { layers: L[] } {
  const bits = BITS[plan.dtype];
  const d = weightDeclarer(g, store, plan);
  const keys = weightKeys(c);
  const quantEmb = bits !== undefined && plan.quantizeEmbedding !== false;
  const embedding: EmbeddingWeight =
    quantEmb || plan.dtype === 'fp16' ? d.proj(keys.embedding) : { kind: 'dense', w: d.init(keys.embedding) };
  const layers: L[] = [];
  for (let i = 0; i < c.nLayer; i++) layers.push(layer(d, i));
  const normF = d.init(keys.normF);
  let lmHead: LinearWeight = embedding; // tied, stored alike
  if (keys.lmHead !== undefined) lmHead = d.proj(keys.lmHead);
  else if (bits && embedding.kind === 'dense') lmHead = d.proj(keys.embedding); // tied, embedding kept float32
  return { embedding, normF, lmHead, layers };
}
