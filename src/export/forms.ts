/**
 * The SSD forms (`export --ssd`): how the sequence path computes the conv and the SSD. Every form
 * keeps the graph I/O contract, so any runtime code works with any form. The single-token path
 * (the `If` branch for sequence == 1) is the same recurrent step for all forms.
 */
import type { Ctx } from './blocks.js';
import { causalConv, type ConvOut } from './conv.js';
import type { SsdForm } from '../package/meta.js';
import { ssdChunked, type SsdInputs, type SsdOut } from './ssd.js';
import type { Value } from '../graph/value.js';
import { MS_DOMAIN, PROJECT_DOMAIN } from '../graph/opset.js';
import { convContrib, ssdContrib } from './ssd-contrib.js';
import { SSD_OP_VERSION, ssdFunction } from './ssd-function.js';
import { ssdScan } from './ssd-scan.js';

export interface SequenceForm {
  /** Causal depthwise conv + SiLU over xBC [B,L,Cdim] continuing `past` [B,Cdim,K-1]. */
  conv(ctx: Ctx, xbc: Value, past: Value, w: Value, b: Value | undefined): ConvOut;
  /** y [B,L,H,P] (without D) and the final state [B,H,P,N]. */
  ssd(ctx: Ctx, inp: SsdInputs): SsdOut;
  /** Opset imports the form needs besides the default domain. */
  opsets?: Record<string, number>;
}

const FORMS: Record<SsdForm, SequenceForm> = {
  /** The dual form in MatMul, CumSum, Exp… (ssd.ts). */
  chunked: { conv: causalConv, ssd: ssdChunked },
  /** One ai.mamba2onnx::SSDChunkScan node per layer; its FunctionProto body is the chunked form. */
  function: { conv: causalConv, ssd: ssdFunction, opsets: { [PROJECT_DOMAIN]: SSD_OP_VERSION } },
  /** ONNX Runtime's com.microsoft LinearAttention (gated) and CausalConvWithState. */
  contrib: { conv: convContrib, ssd: ssdContrib, opsets: { [MS_DOMAIN]: 1 } },
  /** The sequential recurrence in an ONNX Scan over time (the baseline). */
  scan: { conv: causalConv, ssd: ssdScan },
};

export function sequenceForm(form: SsdForm): SequenceForm {
  const f = Object.hasOwn(FORMS, form) ? FORMS[form] : undefined;
  if (!f) throw new RangeError(`ssd: expected one of ${Object.keys(FORMS).join(', ')}, got '${form}'`);
  return f;
}

export function availableForms(): SsdForm[] {
  return Object.keys(FORMS) as SsdForm[];
}
