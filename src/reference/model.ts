/**
 * The full Mamba-2 language model (docs/model.md §1.1): embedding → NL × (x + Mixer(RMSNorm(x))) → RMSNorm
 * → lm_head, in float64, with per-layer states in and out. Slow and plain on purpose: it is the
 * ground truth for the ONNX graph's tests.
 */
import type { Mamba2Config } from '../package/config.js';
import { linear, rmsNorm } from './blocks.js';
import { mamba2Mixer, mixerWeights, requireWeight, type LayerState, type Weights } from './mixer.js';
import type { Tensor } from './tensor.js';

export type { LayerState, Weights } from './mixer.js';

/** HF and mamba_ssm spell the embedding differently (docs/model.md §4.1). */
const EMBEDDING_KEYS = ['backbone.embeddings.weight', 'backbone.embedding.weight'] as const;

export interface ForwardResult {
  /** [B, L, V] */
  readonly logits: Tensor<Float64Array>;
  /** One per layer: the state after the last token of this call. */
  readonly states: LayerState[];
}

function embeddingWeight(weights: Weights, c: Mamba2Config): Float32Array | Float64Array {
  const key = EMBEDDING_KEYS.find((k) => weights[k] !== undefined);
  if (!key) throw new RangeError(`weights: missing the embedding (expected one of ${EMBEDDING_KEYS.join(', ')})`);
  return requireWeight(weights, key, c.vocabSize * c.dModel);
}

/** lm_head.weight, or the embedding when tied (a tied checkpoint's lm_head copy, if any, is ignored). */
function lmHeadWeight(weights: Weights, c: Mamba2Config): Float32Array | Float64Array {
  if (c.tieEmbeddings) return embeddingWeight(weights, c);
  return requireWeight(weights, 'lm_head.weight', c.vocabSize * c.dModel);
}

/**
 * ids [B][L] (every row the same length) → logits [B, L, V] and the new states. `states` (one per
 * layer) continues a sequence; absent means a fresh one.
 */
export function mamba2Forward(
  c: Mamba2Config,
  weights: Weights,
  ids: readonly (readonly number[])[],
  states?: readonly LayerState[],
): ForwardResult {
  const b = ids.length;
  const l = ids[0]?.length ?? 0;
  if (b === 0 || l === 0) throw new RangeError(`mamba2Forward(ids): expected a non-empty [B][L] array, got [${b}][${l}]`);
  ids.forEach((row, i) => {
    if (row.length !== l) throw new RangeError(`mamba2Forward(ids[${i}]): expected ${l} tokens like row 0, got ${row.length}`);
  });
  if (states && states.length !== c.nLayer) {
    throw new RangeError(`mamba2Forward(states): expected ${c.nLayer} layer states, got ${states.length}`);
  }
  const d = c.dModel;
  const emb = embeddingWeight(weights, c);
  let x = new Float64Array(b * l * d);
  ids.forEach((row, i) =>
    row.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new RangeError(`mamba2Forward(ids[${i}][${t}]): expected an integer in [0, ${c.vocabSize}), got ${id}`);
      }
      for (let k = 0; k < d; k++) x[(i * l + t) * d + k] = emb[id * d + k]!;
    }),
  );
  const next: LayerState[] = [];
  for (let layer = 0; layer < c.nLayer; layer++) {
    const normW = requireWeight(weights, `backbone.layers.${layer}.norm.weight`, d);
    const u = rmsNorm({ data: x, shape: [b, l, d] }, normW, c.normEps);
    const mixed = mamba2Mixer(c, mixerWeights(weights, c, layer), u, states?.[layer]);
    const y = mixed.y.data;
    const sum = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) sum[i] = x[i]! + y[i]!;
    x = sum;
    next.push(mixed.state);
  }
  const h = rmsNorm({ data: x, shape: [b, l, d] }, requireWeight(weights, 'backbone.norm_f.weight', d), c.normEps);
  const logits = linear(h, lmHeadWeight(weights, c), c.vocabSize);
  return { logits, states: next };
}

/** argmax over ids < `vocabLimit`, skipping `exclude`. */
function argmax(row: ArrayLike<number>, vocabLimit: number, exclude?: number): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < Math.min(vocabLimit, row.length); i++) {
    if (i === exclude) continue;
    if (row[i]! > bestV) {
      bestV = row[i]!;
      best = i;
    }
  }
  return best;
}

export interface GreedyOptions {
  /** Excluded from the argmax (the fixtures exclude EOS). */
  readonly excludeId?: number;
  /** Only ids below this are candidates (the real vocab; padded rows are masked). Default V. */
  readonly vocabLimit?: number;
}

/** Prefill `prompt`, then decode `newTokens` one token at a time through the states. */
export function greedyDecode(
  c: Mamba2Config,
  weights: Weights,
  prompt: readonly number[],
  newTokens: number,
  opts: GreedyOptions = {},
): number[] {
  const v = c.vocabSize;
  const limit = opts.vocabLimit ?? v;
  const out = [...prompt];
  let res = mamba2Forward(c, weights, [prompt]);
  for (let i = 0; i < newTokens; i++) {
    const lastRow = res.logits.data.subarray((res.logits.shape[1]! - 1) * v, res.logits.shape[1]! * v);
    const id = argmax(lastRow, limit, opts.excludeId);
    out.push(id);
    if (i + 1 < newTokens) res = mamba2Forward(c, weights, [[id]], res.states);
  }
  return out;
}
