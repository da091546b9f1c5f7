/**
 * Typed wrappers for ONNX Runtime's `com.microsoft` contrib ops. Schemas as registered in
 * onnxruntime 1.30 (onnxruntime/core/graph/contrib_ops/bert_defs.cc; CPU kernels in
 * onnxruntime/contrib_ops/cpu/bert/); contrib-ops/<Op>/README.md documents what each computes.
 */
import type { GraphBuilder } from './builder.js';
import type { Dim } from './shape.js';
import { dimEquals, fmtShape, ShapeError } from './shape.js';
import { MS_DOMAIN } from './opset.js';
import type { Value } from './value.js';

const int = (value: number) => ({ type: 'int' as const, value });
const float = (value: number) => ({ type: 'float' as const, value });
const str = (value: string) => ({ type: 'string' as const, value });

function expectRank(g: GraphBuilder, op: string, v: Value, rank: number, axes: string): void {
  if (v.rank !== rank) throw new ShapeError(g.nodeName(op), v.name, axes, fmtShape(v.shape));
  if (v.dtype !== 'float32') throw new ShapeError(g.nodeName(op), v.name, 'dtype float32', v.dtype);
}

function expectDim(g: GraphBuilder, op: string, v: Value, axis: number, want: Dim, axes: string): void {
  if (dimEquals(v.shape[axis]!, want) === false)
    throw new ShapeError(g.nodeName(op), v.name, `${axes} with dim ${axis} = ${String(want)}`, fmtShape(v.shape));
}

export type LinearAttentionRule = 'linear' | 'gated' | 'delta' | 'gated_delta';

export interface LinearAttentionOptions {
  updateRule: LinearAttentionRule;
  /** H_q: heads of `query` (fewer than `kvNumHeads` is "inverse GQA": H_kv/H_q value heads share one query/key head). */
  qNumHeads: number;
  /** H_kv: heads of `value`, of the decay and of the state. */
  kvNumHeads: number;
  /** Output scale; ORT's default (0) means 1/sqrt(d_k), so pass 1 for an unscaled readout. */
  scale: number;
}

/**
 * com.microsoft LinearAttention: per (batch, kv head) the recurrence over t
 *   S_t = exp(g_t)·S_{t−1} + k_t ⊗ v_t   (gated)      o_t = scale · q_tᵀ S_t
 * query [B,T,H_q·d_k], key [B,T,H_k·d_k], value [B,T,H_kv·d_v], past_state [B,H_kv,d_k,d_v],
 * decay [B,T,H_kv] (log-space, per head) → output [B,T,max(H_q,H_kv)·d_v], present [B,H_kv,d_k,d_v].
 */
export function LinearAttention(
  g: GraphBuilder,
  q: Value,
  k: Value,
  v: Value,
  past: Value | undefined,
  decay: Value | undefined,
  opts: LinearAttentionOptions,
): { y: Value; state: Value } {
  const op = 'LinearAttention';
  for (const x of [q, k, v, ...(decay ? [decay] : [])]) expectRank(g, op, x, 3, '[B,T,H·D]');
  const [hq, hkv] = [opts.qNumHeads, opts.kvNumHeads];
  if (!(hq > 0 && hkv > 0 && (hq % hkv === 0 || hkv % hq === 0))) {
    throw new ShapeError(g.nodeName(op), 'q_num_heads/kv_num_heads', 'positive, one a multiple of the other', `${hq}/${hkv}`);
  }
  const [qh, vh] = [q.shape[2]!, v.shape[2]!];
  if (typeof qh !== 'number' || qh % hq !== 0)
    throw new ShapeError(g.nodeName(op), q.name, `last dim a multiple of q_num_heads ${hq}`, fmtShape(q.shape));
  if (typeof vh !== 'number' || vh % hkv !== 0)
    throw new ShapeError(g.nodeName(op), v.name, `last dim a multiple of kv_num_heads ${hkv}`, fmtShape(v.shape));
  const [dk, dv] = [qh / hq, vh / hkv];
  const kh = k.shape[2]!;
  if (typeof kh !== 'number' || kh % dk !== 0 || hkv % (kh / dk) !== 0) {
    throw new ShapeError(g.nodeName(op), k.name, `last dim = H_k·${dk} with H_k dividing ${hkv}`, fmtShape(k.shape));
  }
  for (const x of [k, v, ...(decay ? [decay] : [])]) {
    expectDim(g, op, x, 0, q.shape[0]!, '[B,T,·]');
    expectDim(g, op, x, 1, q.shape[1]!, '[B,T,·]');
  }
  const needsDecay = opts.updateRule === 'gated' || opts.updateRule === 'gated_delta';
  if (needsDecay !== (decay !== undefined))
    throw new ShapeError(g.nodeName(op), 'decay', needsDecay ? 'a decay input' : 'no decay input', needsDecay ? 'none' : decay!.name);
  if (decay && decay.shape[2] !== hkv && decay.shape[2] !== hkv * dk)
    throw new ShapeError(g.nodeName(op), decay.name, `[B,T,${hkv}] or [B,T,${hkv * dk}]`, fmtShape(decay.shape));
  const stateShape = [q.shape[0]!, hkv, dk, dv];
  if (past) {
    expectRank(g, op, past, 4, '[B,H_kv,d_k,d_v]');
    stateShape.forEach((d, i) => expectDim(g, op, past, i, d, '[B,H_kv,d_k,d_v]'));
  }
  if (opts.updateRule === 'delta' || opts.updateRule === 'gated_delta')
    throw new ShapeError(g.nodeName(op), 'beta', 'update_rule linear or gated (beta is not wrapped)', opts.updateRule);
  const [y, state] = g.node(op, [q, k, v, past, decay], {
    domain: MS_DOMAIN,
    attrs: { update_rule: str(opts.updateRule), q_num_heads: int(hq), kv_num_heads: int(hkv), scale: float(opts.scale) },
    outputs: [
      { dtype: 'float32', shape: [q.shape[0]!, q.shape[1]!, Math.max(hq, hkv) * dv] },
      { dtype: 'float32', shape: stateShape },
    ],
  });
  return { y: y!, state: state! };
}

export interface CausalConvOptions {
  activation?: 'silu' | 'none';
  /** 1: input/output [B,L,C] and states [B,K−1,C] (sequence-major); 0 (default): [B,C,L] and [B,C,K−1]. */
  channelsLast?: boolean;
}

/**
 * com.microsoft CausalConvWithState (ndim 1): depthwise causal conv over the past state followed by
 * the input, optional fused SiLU, and the new state (the last K−1 input columns).
 * w [C,1,K], bias [C]; channels-first x [B,C,L] / state [B,C,K−1], or channels-last x [B,L,C] / state [B,K−1,C].
 */
export function CausalConvWithState(
  g: GraphBuilder,
  x: Value,
  w: Value,
  bias: Value | undefined,
  past: Value | undefined,
  opts: CausalConvOptions = {},
): { y: Value; state: Value } {
  const op = 'CausalConvWithState';
  expectRank(g, op, x, 3, opts.channelsLast ? '[B,L,C]' : '[B,C,L]');
  expectRank(g, op, w, 3, '[C,1,K]');
  const [C, one, K] = w.shape;
  if (one !== 1 || typeof K !== 'number') throw new ShapeError(g.nodeName(op), w.name, '[C,1,K] with a static K', fmtShape(w.shape));
  const cAxis = opts.channelsLast ? 2 : 1;
  expectDim(g, op, x, cAxis, C!, 'x');
  if (bias) expectDim(g, op, bias, 0, C!, '[C]');
  const stateShape = opts.channelsLast ? [x.shape[0]!, K - 1, C!] : [x.shape[0]!, C!, K - 1];
  if (past) {
    expectRank(g, op, past, 3, fmtShape(stateShape));
    stateShape.forEach((d, i) => expectDim(g, op, past, i, d, fmtShape(stateShape)));
  }
  const [y, state] = g.node(op, [x, w, bias, past], {
    domain: MS_DOMAIN,
    attrs: { activation: opts.activation ? str(opts.activation) : undefined, channels_last: opts.channelsLast ? int(1) : undefined },
    outputs: [
      { dtype: 'float32', shape: x.shape },
      { dtype: 'float32', shape: stateShape },
    ],
  });
  return { y: y!, state: state! };
}
