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
 */
import type { DType } from '../graph/dtype.js';
import type { Dim } from '../graph/shape.js';
import type { Mamba2Config } from './config-types.js';

export const BATCH = 'batch';
export const SEQUENCE = 'sequence';

export const IO_NAMES = {
  inputIds: 'input_ids',
  logits: 'logits',
  pastConv: (i: number): string => `past_conv.${i}`,
  pastSsm: (i: number): string => `past_ssm.${i}`,
  presentConv: (i: number): string => `present_conv.${i}`,
  presentSsm: (i: number): string => `present_ssm.${i}`,
} as const;

export interface IOEntry {
  name: string;
  dtype: DType;
  shape: Dim[];
  /** What the tensor holds, for the README and `inspect`. */
  role: 'input_ids' | 'logits' | 'conv_state' | 'ssm_state';
  layer?: number;
}

export interface IOTable {
  inputs: IOEntry[];
  outputs: IOEntry[];
}

export function convStateShape(c: Mamba2Config): Dim[] {
  return [BATCH, c.convDim, c.dConv - 1];
}

export function ssmStateShape(c: Mamba2Config): Dim[] {
  return [BATCH, c.nHeads, c.headDim, c.dState];
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
  const outputs: IOEntry[] = [{ name: IO_NAMES.logits, dtype: 'float32', shape: [BATCH, opts.lastLogits ? 1 : seq, c.vocabSize], role: 'logits' }];
  for (let i = 0; i < c.nLayer; i++) {
    inputs.push({ name: IO_NAMES.pastConv(i), dtype: stateDtype, shape: convStateShape(c), role: 'conv_state', layer: i });
    inputs.push({ name: IO_NAMES.pastSsm(i), dtype: 'float32', shape: ssmStateShape(c), role: 'ssm_state', layer: i });
    outputs.push({ name: IO_NAMES.presentConv(i), dtype: stateDtype, shape: convStateShape(c), role: 'conv_state', layer: i });
    outputs.push({ name: IO_NAMES.presentSsm(i), dtype: 'float32', shape: ssmStateShape(c), role: 'ssm_state', layer: i });
  }
  return { inputs, outputs };
}
