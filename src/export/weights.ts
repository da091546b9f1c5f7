/**
 * Checkpoint tensors → lazy initializers. Each initializer keeps its checkpoint key and holds the
 * tensor exactly as stored (no transposes: projections use Gemm with transB, the tied lm_head
 * reads the embedding). Data is read from the store only when the serializer writes it.
 *
 * Derived values are computed in the graph, next to their use, where ORT folds them once at
 * session start: A = −exp(A_log) (spec §1.2 step 5, fp32), the conv weight's (Cdim,1,K) → (Cdim,K).
 */
import type { GraphBuilder } from '../graph/builder.js';
import type { TensorData } from '../graph/ir.js';
import { lazyTensor } from '../graph/tensor.js';
import type { Value } from '../graph/value.js';
import type { TensorStore } from './checkpoint/types.js';
import type { Mamba2Config } from './config-types.js';
import { weightKeys } from './weight-names.js';

export interface LayerWeights {
  norm: Value; // [D]
  inProj: Value; // [F,D]
  inProjBias: Value | undefined; // [F]
  conv: Value; // [Cdim,1,K]
  convBias: Value | undefined; // [Cdim]
  dtBias: Value; // [H]
  aLog: Value; // [H]
  D: Value; // [H] or [H·P]
  gatedNorm: Value; // [DI]
  outProj: Value; // [D,DI]
  outProjBias: Value | undefined; // [D]
}

export interface ModelWeights {
  embedding: Value; // [V,D]
  normF: Value; // [D]
  lmHead: Value; // [V,D] (the embedding when tied)
  layers: LayerWeights[];
}

/** Reads a float32 tensor from the store when asked, as bytes; the array is dropped after writing. */
export function storeTensor(store: TensorStore, key: string): TensorData {
  const info = store.info(key);
  if (!info) throw new Error(`checkpoint has no tensor '${key}'`);
  return lazyTensor('float32', info.shape, async () => {
    const a = await store.readFloat32(key);
    const bad = a.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`checkpoint tensor '${key}' holds ${a[bad]} at flat index ${bad}: refusing to export non-finite weights`);
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  });
}

/** Declares every weight of the model as an initializer of `g` (in checkpoint order of use). */
export function declareWeights(g: GraphBuilder, c: Mamba2Config, store: TensorStore): ModelWeights {
  const keys = weightKeys(c);
  const init = (key: string) => g.initializer(key, storeTensor(store, key));
  const opt = (key: string | undefined) => (key === undefined ? undefined : init(key));
  const embedding = init(keys.embedding);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const k = weightKeys(c, i).layer;
    layers.push({
      norm: init(k.norm),
      inProj: init(k.inProj),
      inProjBias: opt(k.inProjBias),
      conv: init(k.conv),
      convBias: opt(k.convBias),
      dtBias: init(k.dtBias),
      aLog: init(k.aLog),
      D: init(k.D),
      gatedNorm: init(k.gatedNorm),
      outProj: init(k.outProj),
      outProjBias: opt(k.outProjBias),
    });
  }
  const normF = init(keys.normF);
  const lmHead = keys.lmHead === undefined ? embedding : init(keys.lmHead);
  return { embedding, normF, lmHead, layers };
}
