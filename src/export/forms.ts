/**
 * The SSD forms (`export --ssd`): how the sequence path computes the conv and the SSD. Every form
 * keeps the graph I/O contract, so any runtime code works with any form. The single-token path
 * (the `If` branch for sequence == 1) is the same recurrent step for all forms.
 */
import type { Ctx } from './blocks.js';
import { causalConv, type ConvOut } from './conv.js';
import type { SsdForm } from './model-meta.js';
import { ssdChunked, type SsdInputs, type SsdOut } from './ssd.js';
import type { Value } from '../graph/value.js';

export interface SequenceForm {
  /** Causal depthwise conv + SiLU over xBC [B,L,Cdim] continuing `past` [B,Cdim,K-1]. */
  conv(ctx: Ctx, xbc: Value, past: Value, w: Value, b: Value | undefined): ConvOut;
  /** y [B,L,H,P] (without D) and the final state [B,H,P,N]. */
  ssd(ctx: Ctx, inp: SsdInputs): SsdOut;
  /** Opset imports the form needs besides the default domain. */
  opsets?: Record<string, number>;
}

const FORMS: Partial<Record<SsdForm, SequenceForm>> = {
  chunked: { conv: causalConv, ssd: ssdChunked },
};

export function sequenceForm(form: SsdForm): SequenceForm {
  const f = FORMS[form];
  if (!f) throw new RangeError(`ssd: expected one of ${Object.keys(FORMS).join(', ')}, got '${form}'`);
  return f;
}

export function availableForms(): SsdForm[] {
  return Object.keys(FORMS) as SsdForm[];
}
