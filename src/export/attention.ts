/**
 * The attention layer of hybrids with its KV cache (docs/model.md §1.4; HF modeling_bamba `BambaAttention`),
 * in standard ONNX ops only (MatMul, Softmax…: WebGPU has no opset-23 Attention). One function
 * serves a sequence ([B,L,D], causal mask) and the single step ([B,D], one query sees every key).
 *
 *   u ─ projections (split q/k/v, or fused in_proj [─ conv over qkv, no activation]) ─ q, k, v
 *   q, k ─ RoPE on the first R dims at positions past..past+L-1 (rotate-half)
 *   past_key ─┐                                     past_value ─┐
 *   k ────────┴─ Concat ─ present_key [B,Hkv,T,hd]   v ──────────┴─ Concat ─ present_value
 *   q·scale [B,Hkv,rep,L,hd] · present_keyᵀ ─ + causal bias [L,T] ─ Softmax ─ · present_value
 *        ─ [B,L,Hq·hd] (‖ MHA's MLP branch) ─ out_proj
 *
 * GQA without copying K/V: q head h = kv·rep + r is reshaped to [B,Hkv,rep,L,hd], and the caches
 * broadcast over rep as [B,Hkv,1,T,hd]. Positions come from the cache length (no extra inputs).
 * Glossary: Hq/Hkv query/kv heads, hd head dim, R rotary dims, T = past + L keys.
 */
import type { GraphBuilder } from '../graph/builder.js';
import * as op from '../graph/ops.js';
import { END } from '../graph/ops-tensor.js';
import type { Dim } from '../onnx/shape.js';
import type { Value } from '../graph/value.js';
import { B, type Ctx, type LinearWeight, linear, silu } from './blocks.js';
import type { Mamba2Config } from '../package/config.js';
import { type AttentionConfig, attentionOf, qkvDim } from '../package/layers.js';
import { attentionKeys } from './layer-tensors.js';
import type { Declarer } from './weights.js';

/** The state of one attention layer: KV caches [B,Hkv,past,hd] and, for MHA with conv, [B,qkvDim,Ka-1]. */
export interface KvState {
  key: Value;
  value: Value;
  conv?: Value;
}

export type AttentionWeights =
  | { layout: 'split'; q: LinearWeight; k: LinearWeight; v: LinearWeight; out: LinearWeight }
  | { layout: 'fused'; inProj: LinearWeight; inProjBias?: Value; conv?: Value; convBias?: Value; out: LinearWeight; outBias?: Value };

/** The tensors of attention layer i: its pre-norm and the attention weights. */
export function declareAttention(d: Declarer, c: Mamba2Config, i: number): { norm: Value; attn: AttentionWeights } {
  const k = attentionKeys(c, i);
  const norm = d.init(k.norm);
  if (k.q && k.k && k.v) return { norm, attn: { layout: 'split', q: d.proj(k.q), k: d.proj(k.k), v: d.proj(k.v), out: d.proj(k.attnOut) } };
  return {
    norm,
    attn: {
      layout: 'fused',
      inProj: d.proj(k.qkv!),
      inProjBias: d.opt(k.qkvBias),
      conv: d.opt(k.attnConv),
      convBias: d.opt(k.attnConvBias),
      out: d.proj(k.attnOut),
      outBias: d.opt(k.attnOutBias),
    },
  };
}

interface Projected {
  q: Value; // [B,L,Hq·hd]
  k: Value; // [B,L,Hkv·hd]
  v: Value; // [B,L,Hkv·hd]
  conv?: Value; // present conv state [B,qkvDim,Ka-1]
  mlp?: Value; // MHA's MLP branch [B,L,mlpDim/2]
}

/** y = u·Wᵀ (+b); in the step ([B,D] in) the result gets the L = 1 axis back: [B,1,n]. */
function project(ctx: Ctx, name: string, u: Value, w: LinearWeight, bias?: Value): Value {
  const y = linear(ctx, name, u, w, bias);
  return u.rank === 2 ? op.Unsqueeze(ctx.g, y, [1]) : y;
}

/** Depthwise causal conv over qkv [B,L,C] continuing `past` [B,C,Ka-1], no activation (model.md §1.4 step 2, §6.13). */
function qkvConv(ctx: Ctx, a: AttentionConfig, x: Value, past: Value, w: Value, b: Value | undefined): { y: Value; state: Value } {
  const { g } = ctx;
  return g.scope('conv1d', () => {
    const win = op.Concat(g, [past, op.Transpose(g, x, [0, 2, 1])], 2); // [B,C,Ka-1+L]
    const y = op.Transpose(g, op.Conv1d(g, win, w, b, { group: qkvDim(a) }), [0, 2, 1]); // [B,L,C]
    return { y, state: op.Slice(g, win, [-(a.convKernel - 1)], [END], [2]) }; // state: last Ka-1 pre-conv columns
  });
}

type Projector<K extends AttentionWeights['layout']> = (
  ctx: Ctx,
  a: AttentionConfig,
  w: Extract<AttentionWeights, { layout: K }>,
  u: Value,
  past: KvState,
) => Projected;

const PROJECTORS: { [K in AttentionWeights['layout']]: Projector<K> } = {
  /** Bamba: q_proj, k_proj, v_proj. */
  split: (ctx, _a, w, u) => ({ q: project(ctx, 'q_proj', u, w.q), k: project(ctx, 'k_proj', u, w.k), v: project(ctx, 'v_proj', u, w.v) }),
  /** mamba_ssm MHA: in_proj rows [q | k | v | mlp up | mlp gate]; conv over q|k|v; kv laid out (two, Hkv, hd). */
  fused: (ctx, a, w, u, past) => {
    const { g } = ctx;
    let qkv = project(ctx, 'in_proj', u, w.inProj, w.inProjBias); // [B,L,qkvDim (+mlpDim)]
    let mlp: Value | undefined;
    if (a.mlpDim > 0) {
      const [x, up, gate] = op.Split(g, qkv, [qkvDim(a), a.mlpDim / 2, a.mlpDim / 2], -1);
      qkv = x!;
      mlp = op.Mul(g, up!, silu(g, gate!)); // up·silu(gate) (docs/model.md §6.15)
    }
    let conv: Value | undefined;
    if (w.conv) {
      if (!past.conv) throw new Error('attention: the layer has a conv but no conv state');
      const r = qkvConv(ctx, a, qkv, past.conv, w.conv, w.convBias);
      [qkv, conv] = [r.y, r.state];
    }
    const [q, k, v] = op.Split(g, qkv, [a.nHeads * a.headDim, a.nKvHeads * a.headDim, a.nKvHeads * a.headDim], -1);
    return { q: q!, k: k!, v: v!, conv, mlp };
  },
};

/** cos/sin [L,R] for int64 positions [L]: angles pos·θ^(−2j/R), j < R/2, repeated twice (GPT-NeoX layout). */
function rotaryTables(g: GraphBuilder, a: AttentionConfig, pos: Value): { cos: Value; sin: Value } {
  const half = a.rotaryDim / 2;
  const invFreq = Array.from({ length: half }, (_, j) => 1 / a.ropeTheta ** ((2 * j) / a.rotaryDim));
  const posF = op.Cast(g, pos, 'float32', 1); // [L]
  const freqs = op.Mul(g, op.Unsqueeze(g, posF, [1]), g.constant('float32', [half], invFreq)); // [L,R/2]
  const emb = op.Concat(g, [freqs, freqs], -1); // [L,R]
  return { cos: op.Cos(g, emb), sin: op.Sin(g, emb) };
}

/** RoPE on the first R dims of x [B,H,L,hd]: x·cos + rotate_half(x)·sin, rotate_half = [−x2, x1]. */
function rope(g: GraphBuilder, a: AttentionConfig, x: Value, t: { cos: Value; sin: Value }): Value {
  const R = a.rotaryDim;
  const [xr, xp] = R < a.headDim ? op.Split(g, x, [R, a.headDim - R], -1) : [x, undefined];
  const [x1, x2] = op.Split(g, xr!, [R / 2, R / 2], -1);
  const rotated = op.Concat(g, [op.Neg(g, x2!), x1!], -1); // [B,H,L,R]
  const out = op.Add(g, op.Mul(g, xr!, t.cos), op.Mul(g, rotated, t.sin)); // [B,H,L,R]
  return xp ? op.Concat(g, [out, xp], -1) : out; // [B,H,L,hd]
}

/** Scaled dot-product attention over the caches; returns y [B,L,Hq·hd] and the new caches. */
function attend(ctx: Ctx, a: AttentionConfig, p: Projected, past: KvState, causal: boolean): { y: Value; key: Value; value: Value } {
  const { g } = ctx;
  const [Hq, Hkv, hd] = [a.nHeads, a.nKvHeads, a.headDim];
  const rep = Hq / Hkv;
  const L: Dim = p.q.shape[1]!;
  const heads = (x: Value, n: number): Value => op.Transpose(g, op.Reshape(g, x, [B, L, n, hd]), [0, 2, 1, 3]); // [B,n,L,hd]
  const one = g.constant('int64', [], [1]);
  const p0 = op.Shape(g, past.key, 2, 3); // [1] = past length
  const end = op.Add(g, p0, op.Shape(g, p.q, 1, 2)); // [1] = T
  const pos = op.Range(g, op.Squeeze(g, p0, [0]), op.Squeeze(g, end, [0]), one, L); // [L] absolute positions
  let q = heads(p.q, Hq); // [B,Hq,L,hd]
  let k = heads(p.k, Hkv); // [B,Hkv,L,hd]
  if (a.rotaryDim > 0) {
    const t = g.scope('rotary', () => rotaryTables(g, a, pos));
    q = g.scope('rotary_q', () => rope(g, a, q, t));
    k = g.scope('rotary_k', () => rope(g, a, k, t));
  }
  const key = op.Concat(g, [past.key, k], 2); // [B,Hkv,T,hd]
  const value = op.Concat(g, [past.value, heads(p.v, Hkv)], 2); // [B,Hkv,T,hd]
  const T: Dim = key.shape[2]!;
  const q5 = op.Reshape(g, op.Mul(g, q, g.constant('float32', [], [a.softmaxScale])), [B, Hkv, rep, L, hd]); // [B,Hkv,rep,L,hd]
  let s = op.MatMul(g, q5, op.Unsqueeze(g, op.Transpose(g, key, [0, 1, 3, 2]), [2])); // [B,Hkv,rep,L,T]
  if (causal) {
    // query at position pos[i] sees keys 0..pos[i]: bias 0 there, −1e30 after (added, not Where on the big tensor)
    const kpos = op.Range(g, g.constant('int64', [], [0]), op.Squeeze(g, end, [0]), one, T); // [T]
    const seen = op.LessOrEqual(g, op.Unsqueeze(g, kpos, [0]), op.Unsqueeze(g, pos, [1])); // [L,T]
    s = op.Add(g, s, op.Where(g, seen, g.constant('float32', [], [0]), g.constant('float32', [], [-1e30]))); // [B,Hkv,rep,L,T]
  }
  const o = op.MatMul(g, op.Softmax(g, s, -1), op.Unsqueeze(g, value, [2])); // [B,Hkv,rep,L,hd]
  const y = op.Reshape(g, op.Transpose(g, op.Reshape(g, o, [B, Hq, L, hd]), [0, 2, 1, 3]), [B, L, Hq * hd]); // [B,L,Hq·hd]
  return { y, key, value };
}

/**
 * Attention layer on u [B,L,D] (sequence, causal) or u [B,D] (single step). Returns y in u's rank
 * and the present state in I/O order: key, value (, conv).
 */
export function attentionLayer(ctx: Ctx, c: Mamba2Config, w: AttentionWeights, u: Value, past: KvState): { y: Value; present: Value[] } {
  const { g } = ctx;
  const a = attentionOf(c);
  const step = u.rank === 2;
  return g.scope('attn', () => {
    const p = (PROJECTORS[w.layout] as Projector<AttentionWeights['layout']>)(ctx, a, w, u, past);
    const r = attend(ctx, a, p, past, !step);
    let y = p.mlp ? op.Concat(g, [r.y, p.mlp], -1) : r.y; // [B,L,Hq·hd (+mlpDim/2)]
    if (step) y = op.Squeeze(g, y, [1]); // [B,·]
    const out = linear(ctx, w.layout === 'split' ? 'o_proj' : 'out_proj', y, w.out, w.layout === 'fused' ? w.outBias : undefined); // [...,D]
    return { y: out, present: [r.key, r.value, ...(p.conv ? [p.conv] : [])] };
  });
}
