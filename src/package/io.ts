/**
 * THE graph I/O contract: the only place that spells input/output names and their shapes.
 * The graph builder, the model JSON written next to model.onnx, the runtime and the README all
 * read this table.
 *
 *   input_ids      int64   [batch, sequence]
 *   past_conv.{i}  float32 [batch, convDim, K-1]   last K-1 pre-conv xBC columns, oldest first
 *   past_ssm.{i}   float32 [batch, H, P, N]        SSM state h
 *   logits         float32 [batch, sequence, V]   ([batch, 1, V] when exported with --logits last)
 *   present_conv.{i}, present_ssm.{i}: same shapes as their past_ twins.
 * All-zero states mean a fresh sequence. Any sequence ≥ 1 continues any past state.
 *
 * Hybrids (layers.ts): layer i is a Mamba-2 layer (the two states above), a feed-forward layer
 * (no state, no I/O) or an attention layer, whose state is a KV cache that grows by `sequence` each call:
 *   past_key.{i}      float32 [batch, Hkv, past_sequence, hd]   keys after rotary, oldest first
 *   past_value.{i}    float32 [batch, Hkv, past_sequence, hd]
 *   past_conv.{i}     float32 [batch, hd·(Hq+2·Hkv), Ka-1]     mamba_ssm MHA with d_conv > 0 only:
 *                                                              last Ka-1 pre-conv qkv columns
 *   present_key.{i}, present_value.{i}: [batch, Hkv, past_sequence+sequence, hd]; present_conv.{i}
 *   as its past_ twin. A fresh sequence feeds KV caches with past_sequence = 0 (empty tensors) and
 *   a zero conv state; the graph takes positions (rotary, causal mask) from past_sequence.
 */
import type { DType } from '../onnx/dtype.js';
import type { Dim } from '../onnx/shape.js';
import type { Mamba2Config } from './config.js';
import { type AttentionConfig, attentionOf, layerKinds, qkvDim } from './layers.js';

export const BATCH = 'batch';
export const SEQUENCE = 'sequence';
/** Tokens already in the KV caches of a hybrid. */
const PAST_SEQUENCE = 'past_sequence';
/** KV cache length after a call. */
const TOTAL_SEQUENCE = 'past_sequence+sequence';

export const IO_NAMES = {
  inputIds: 'input_ids',
  logits: 'logits',
  pastConv: (i: number): string => `past_conv.${i}`,
  pastSsm: (i: number): string => `past_ssm.${i}`,
  presentConv: (i: number): string => `present_conv.${i}`,
  presentSsm: (i: number): string => `present_ssm.${i}`,
  pastKey: (i: number): string => `past_key.${i}`,
  pastValue: (i: number): string => `past_value.${i}`,
  presentKey: (i: number): string => `present_key.${i}`,
  presentValue: (i: number): string => `present_value.${i}`,
} as const;

export interface IOEntry {
  name: string;
  dtype: DType;
  shape: Dim[];
  /** What the tensor holds, for the README and `inspect`. */
  role: 'input_ids' | 'logits' | 'conv_state' | 'ssm_state' | 'key_cache' | 'value_cache';
  layer?: number;
}

export interface IOTable {
  inputs: IOEntry[];
  outputs: IOEntry[];
}

function convStateShape(c: Mamba2Config): Dim[] {
  return [BATCH, c.convDim, c.dConv - 1];
}

function ssmStateShape(c: Mamba2Config): Dim[] {
  return [BATCH, c.nHeads, c.headDim, c.dState];
}

/** KV cache of an attention layer: [batch, Hkv, len, hd] (len: past_sequence in, past_sequence+sequence out). */
function kvCacheShape(a: AttentionConfig, len: Dim): Dim[] {
  return [BATCH, a.nKvHeads, len, a.headDim];
}

/** Conv state of a mamba_ssm MHA with d_conv > 0: [batch, qkvDim, Ka-1]. */
function attnConvStateShape(a: AttentionConfig): Dim[] {
  return [BATCH, qkvDim(a), a.convKernel - 1];
}

/** A hybrid's attention layer i: KV cache (and MHA conv state) entries, inputs and outputs. */
function attentionIO(c: Mamba2Config, i: number, stateDtype: DType, total: Dim): { inputs: IOEntry[]; outputs: IOEntry[] } {
  const a = attentionOf(c);
  const inputs: IOEntry[] = [
    { name: IO_NAMES.pastKey(i), dtype: 'float32', shape: kvCacheShape(a, PAST_SEQUENCE), role: 'key_cache', layer: i },
    { name: IO_NAMES.pastValue(i), dtype: 'float32', shape: kvCacheShape(a, PAST_SEQUENCE), role: 'value_cache', layer: i },
  ];
  const outputs: IOEntry[] = [
    { name: IO_NAMES.presentKey(i), dtype: 'float32', shape: kvCacheShape(a, total), role: 'key_cache', layer: i },
    { name: IO_NAMES.presentValue(i), dtype: 'float32', shape: kvCacheShape(a, total), role: 'value_cache', layer: i },
  ];
  if (a.convKernel > 0) {
    inputs.push({ name: IO_NAMES.pastConv(i), dtype: stateDtype, shape: attnConvStateShape(a), role: 'conv_state', layer: i });
    outputs.push({ name: IO_NAMES.presentConv(i), dtype: stateDtype, shape: attnConvStateShape(a), role: 'conv_state', layer: i });
  }
  return { inputs, outputs };
}

export interface IOOptions {
  /** dtype of the conv states (float32 by default; the SSM state is always float32). */
  stateDtype?: DType;
  /** Logits of the last position only: shape [batch, 1, V] (export --logits last). */
  lastLogits?: boolean;
  /** A single-step-only graph: input_ids [batch, 1] (export --paths step). */
  stepOnly?: boolean;
}

/** The I/O table of a Mamba-2 model. */
export function ioTable(c: Mamba2Config, opts: IOOptions = {}): IOTable {
  const stateDtype = opts.stateDtype ?? 'float32';
  const seq = opts.stepOnly ? 1 : SEQUENCE;
  const inputs: IOEntry[] = [{ name: IO_NAMES.inputIds, dtype: 'int64', shape: [BATCH, seq], role: 'input_ids' }];
  const outputs: IOEntry[] = [
    { name: IO_NAMES.logits, dtype: 'float32', shape: [BATCH, opts.lastLogits ? 1 : seq, c.vocabSize], role: 'logits' },
  ];
  const kinds = layerKinds(c);
  for (let i = 0; i < c.nLayer; i++) {
    if (kinds[i] === 'attention') {
      const t = attentionIO(c, i, stateDtype, seq === 1 ? `${PAST_SEQUENCE}+1` : TOTAL_SEQUENCE);
      inputs.push(...t.inputs);
      outputs.push(...t.outputs);
      continue;
    }
    if (kinds[i] !== 'mamba2') continue; // feed-forward layers (Nemotron-H's MLP and MoE) keep no state
    inputs.push({ name: IO_NAMES.pastConv(i), dtype: stateDtype, shape: convStateShape(c), role: 'conv_state', layer: i });
    inputs.push({ name: IO_NAMES.pastSsm(i), dtype: 'float32', shape: ssmStateShape(c), role: 'ssm_state', layer: i });
    outputs.push({ name: IO_NAMES.presentConv(i), dtype: stateDtype, shape: convStateShape(c), role: 'conv_state', layer: i });
    outputs.push({ name: IO_NAMES.presentSsm(i), dtype: 'float32', shape: ssmStateShape(c), role: 'ssm_state', layer: i });
  }
  return { inputs, outputs };
}
