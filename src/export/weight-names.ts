/**
 * Checkpoint keys and shapes of a Mamba-2 language model, per family (docs/model.md §4.1; the names
 * come from families/*.ts, a hybrid's non-Mamba tensors from layer-tensors.ts). The exporter names
 * its initializers after these keys, so loading a checkpoint is a lookup.
 */
import type { CheckpointFormat, Mamba2Config } from '../package/config.js';
import type { CkptDType, TensorStore } from './checkpoint/types.js';
import { hybridOf, layerKinds } from '../package/layers.js';
import { familyOf } from './families/index.js';
import { mamba2 } from './families/mamba2.js';
import { mambaSsm } from './families/mamba_ssm.js';
import { type HybridRole, hybridLayerTensors } from './layer-tensors.js';

export const LM_HEAD_KEY = 'lm_head.weight';

export interface LayerWeightKeys {
  readonly norm: string; // (D)
  readonly inProj: string; // (F, D)
  readonly inProjBias?: string; // (F), only with bias
  readonly conv: string; // (Cdim, 1, K)
  readonly convBias?: string; // (Cdim), only with conv bias
  readonly dtBias: string; // (H)
  readonly aLog: string; // (H)
  readonly D: string; // (H) or (H·P) with dHasHdim
  readonly gatedNorm: string; // (d_ssm)
  readonly outProj: string; // (D, DI)
  readonly outProjBias?: string; // (D), only with bias
}

export interface ModelWeightKeys {
  readonly embedding: string; // (V, D)
  readonly normF: string; // (D)
  /** (V, D); undefined when tied: the head is the embedding (a tied checkpoint may still hold the key). */
  readonly lmHead: string | undefined;
}

export type WeightRole = 'embedding' | 'normF' | 'lmHead' | keyof LayerWeightKeys | HybridRole;

/** One tensor the model needs: its key, shape and role (`layer` set for per-layer tensors). */
export interface ExpectedTensor {
  readonly key: string;
  readonly shape: readonly number[];
  readonly role: WeightRole;
  readonly layer?: number;
}

/** Keys of Mamba-2 layer `i` (the same suffixes in every family, under the family's prefix: families/*.ts). */
export function layerWeightKeys(c: Mamba2Config, i: number): LayerWeightKeys {
  if (!Number.isInteger(i) || i < 0 || i >= c.nLayer) {
    throw new RangeError(`layer: expected an integer in [0, ${c.nLayer}), got ${i}`);
  }
  const kind = layerKinds(c)[i];
  if (kind !== 'mamba2')
    throw new RangeError(`layer: expected a Mamba-2 layer, got ${i}, an ${kind} layer (layer-tensors.ts has its keys)`);
  const names = familyOf(c).names;
  const m = names.mamba(c, i);
  return {
    norm: names.norm(c, i),
    inProj: `${m}.in_proj.weight`,
    ...(c.bias ? { inProjBias: `${m}.in_proj.bias` } : {}),
    conv: `${m}.conv1d.weight`,
    ...(c.convBias ? { convBias: `${m}.conv1d.bias` } : {}),
    dtBias: `${m}.dt_bias`,
    aLog: `${m}.A_log`,
    D: `${m}.D`,
    gatedNorm: `${m}.norm.weight`,
    outProj: `${m}.out_proj.weight`,
    ...(c.bias ? { outProjBias: `${m}.out_proj.bias` } : {}),
  };
}

/** Model-level keys in the config's format; with `layer`, also that layer's keys. */
export function weightKeys(c: Mamba2Config): ModelWeightKeys;
export function weightKeys(c: Mamba2Config, layer: number): ModelWeightKeys & { readonly layer: LayerWeightKeys };
export function weightKeys(c: Mamba2Config, layer?: number): ModelWeightKeys & { readonly layer?: LayerWeightKeys } {
  const top = familyOf(c).names.top(c);
  const keys: ModelWeightKeys = {
    embedding: top.embedding,
    normF: top.normF,
    lmHead: c.tieEmbeddings ? undefined : LM_HEAD_KEY,
  };
  return layer === undefined ? keys : { ...keys, layer: layerWeightKeys(c, layer) };
}

/** Shape of each per-layer tensor (docs/model.md §4.1). */
function layerShapes(c: Mamba2Config): Readonly<Record<keyof LayerWeightKeys, readonly number[]>> {
  return {
    norm: [c.dModel],
    inProj: [c.dInProj, c.dModel],
    inProjBias: [c.dInProj],
    conv: [c.convDim, 1, c.dConv],
    convBias: [c.convDim],
    dtBias: [c.nHeads],
    aLog: [c.nHeads],
    D: [c.dHasHdim ? c.dSsm : c.nHeads],
    gatedNorm: [c.dSsm],
    outProj: [c.dModel, c.dInner],
    outProjBias: [c.dModel],
  };
}

/**
 * Every tensor the model reads, in model order: embedding, layers 0..NL−1 (a hybrid's attention
 * and MLP tensors included), norm_f, lm_head (untied only).
 */
export function expectedTensors(c: Mamba2Config): ExpectedTensor[] {
  const top = weightKeys(c);
  const shapes = layerShapes(c);
  const kinds = layerKinds(c);
  const out: ExpectedTensor[] = [{ key: top.embedding, shape: [c.vocabSize, c.dModel], role: 'embedding' }];
  for (let i = 0; i < c.nLayer; i++) {
    if (kinds[i] === 'mamba2') {
      for (const [role, key] of Object.entries(layerWeightKeys(c, i)) as [keyof LayerWeightKeys, string][]) {
        out.push({ key, shape: shapes[role], role, layer: i });
      }
    }
    out.push(...hybridLayerTensors(c, i));
  }
  out.push({ key: top.normF, shape: [c.dModel], role: 'normF' });
  if (top.lmHead !== undefined) out.push({ key: top.lmHead, shape: [c.vocabSize, c.dModel], role: 'lmHead' });
  return out;
}

/** The store's tensors do not match the config: every missing and misshapen tensor is listed. */
export class WeightMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly missing: readonly string[],
    readonly mismatched: readonly { key: string; expected: string; got: string }[],
  ) {
    const lines = [...missing.map((k) => `  missing ${k}`), ...mismatched.map((m) => `  ${m.key}: expected ${m.expected}, got ${m.got}`)];
    const counts = `${missing.length} missing, ${mismatched.length} with the wrong shape or dtype`;
    super(`${source}: the checkpoint does not match the config (${counts}):\n${lines.join('\n')}`);
    this.name = 'WeightMismatchError';
  }
}

export interface WeightCheck {
  /** Keys the model does not read (ignored; worth a warning). A tied checkpoint's lm_head.weight is not listed. */
  readonly unexpected: string[];
}

const fmtShape = (s: readonly number[]): string => `(${s.join(', ')})`;
const FLOAT_DTYPES: ReadonlySet<CkptDType> = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Verifies that `store` holds every tensor `c` needs with the right shape and a float dtype. Throws one
 * `WeightMismatchError` listing all problems; returns the keys it would ignore.
 */
export function checkWeights(c: Mamba2Config, store: TensorStore, source: string = store.kind): WeightCheck {
  const expected = expectedTensors(c);
  const wanted = new Set(expected.map((t) => t.key));
  const missing: string[] = [];
  const mismatched: { key: string; expected: string; got: string }[] = [];
  for (const t of expected) {
    const info = store.info(t.key);
    if (info === undefined) {
      missing.push(t.key + otherFormatHint(c, t, store));
      continue;
    }
    const sameShape = info.shape.length === t.shape.length && info.shape.every((d, k) => d === t.shape[k]);
    if (!sameShape) {
      mismatched.push({ key: t.key, expected: fmtShape(t.shape), got: fmtShape(info.shape) });
    } else if (!FLOAT_DTYPES.has(info.dtype)) {
      mismatched.push({ key: t.key, expected: 'a float dtype (F32, F16, BF16, F64)', got: info.dtype });
    }
  }
  if (missing.length > 0 || mismatched.length > 0) throw new WeightMismatchError(source, missing, mismatched);
  const ignorable = c.tieEmbeddings ? LM_HEAD_KEY : undefined; // torch state_dicts save tied heads too
  return { unexpected: store.keys().filter((k) => !wanted.has(k) && k !== ignorable) };
}

/** " (found X: …)" when the tensor is present under the other format's name. */
function otherFormatHint(c: Mamba2Config, t: ExpectedTensor, store: TensorStore): string {
  if (t.role !== 'embedding' || hybridOf(c)) return '';
  const other: CheckpointFormat = c.format === 'hf' ? 'mamba_ssm' : 'hf';
  const alt = (other === 'hf' ? mamba2 : mambaSsm).names.top(c).embedding; // HF renames embedding. → embeddings.
  if (store.info(alt) === undefined) return '';
  return ` (found ${alt}: is this a ${other} checkpoint? the config is ${c.format})`;
}
