/**
 * Plain TypeScript reference of com.microsoft LinearAttention (update_rule 'linear' | 'gated'),
 * token by token in float64, with ORT's head mapping (README.md). Tensors are flat, row-major.
 */
import type { FloatArray } from '../../src/reference/tensor.js';

export interface LinearAttentionAttrs {
  update_rule: 'linear' | 'gated';
  q_num_heads: number;
  kv_num_heads: number;
  /** 0 = 1/sqrt(d_k) (ORT's default). */
  scale?: number;
}

export interface LinearAttentionInputs {
  query: { data: FloatArray; dims: number[] }; // [B,T,H_q·d_k]
  key: { data: FloatArray; dims: number[] }; // [B,T,H_k·d_k]
  value: { data: FloatArray; dims: number[] }; // [B,T,H_kv·d_v]
  past_state?: { data: FloatArray; dims: number[] }; // [B,H_kv,d_k,d_v]
  decay?: { data: FloatArray; dims: number[] }; // [B,T,H_kv] (log-space)
}

export function linearAttention(
  inp: LinearAttentionInputs,
  a: LinearAttentionAttrs,
): { output: Float64Array; present_state: Float64Array; dims: { output: number[]; present_state: number[] } } {
  const [b, t] = inp.query.dims as [number, number, number];
  const [hq, hkv] = [a.q_num_heads, a.kv_num_heads];
  const dk = inp.query.dims[2]! / hq;
  const dv = inp.value.dims[2]! / hkv;
  const hk = inp.key.dims[2]! / dk;
  if (![dk, dv, hk].every(Number.isInteger) || hkv % hk !== 0 || (hq % hkv !== 0 && hkv % hq !== 0)) {
    throw new RangeError(
      `linearAttention: inconsistent heads: q ${inp.query.dims}, k ${inp.key.dims}, v ${inp.value.dims}, H_q=${hq}, H_kv=${hkv}`,
    );
  }
  if ((a.update_rule === 'gated') !== (inp.decay !== undefined))
    throw new RangeError(`linearAttention(decay): required exactly for update_rule 'gated', got rule '${a.update_rule}'`);
  const scale = a.scale ? a.scale : 1 / Math.sqrt(dk);
  const hOut = Math.max(hq, hkv);
  const S = inp.past_state ? Float64Array.from(inp.past_state.data) : new Float64Array(b * hkv * dk * dv);
  const out = new Float64Array(b * t * hOut * dv);
  for (let i = 0; i < b; i++) {
    for (let h = 0; h < hkv; h++) {
      const s0 = (i * hkv + h) * dk * dv;
      const hK = Math.floor(h / (hkv / hk));
      // query heads reading this state: GQA (H_q ≥ H_kv) several, inverse GQA one shared head
      const qHeads = hq >= hkv ? Array.from({ length: hq / hkv }, (_, j) => h * (hq / hkv) + j) : [Math.floor((h * hq) / hkv)];
      for (let s = 0; s < t; s++) {
        const row = i * t + s;
        const g = inp.decay ? Math.exp(inp.decay.data[row * hkv + h]!) : 1;
        for (let p = 0; p < dk; p++) {
          const kp = inp.key.data[(row * hk + hK) * dk + p]!;
          for (let v = 0; v < dv; v++) S[s0 + p * dv + v] = g * S[s0 + p * dv + v]! + kp * inp.value.data[(row * hkv + h) * dv + v]!;
        }
        for (const hQ of qHeads) {
          const oHead = hq >= hkv ? hQ : h;
          for (let v = 0; v < dv; v++) {
            let acc = 0;
            for (let p = 0; p < dk; p++) acc += inp.query.data[(row * hq + hQ) * dk + p]! * S[s0 + p * dv + v]!;
            out[(row * hOut + oHead) * dv + v] = scale * acc;
          }
        }
      }
    }
  }
  return { output: out, present_state: S, dims: { output: [b, t, hOut * dv], present_state: [b, hkv, dk, dv] } };
}
