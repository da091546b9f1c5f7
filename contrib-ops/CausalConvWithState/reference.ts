/**
 * Plain TypeScript reference of com.microsoft CausalConvWithState (ndim 1): the layouts of the op
 * mapped onto the model's reference conv (src/reference/blocks.ts `causalConv`, x [B,L,C], state [B,C,K−1]).
 */
import { causalConv } from '../../src/reference/blocks.js';
import type { FloatArray } from '../../src/reference/tensor.js';

export interface CausalConvAttrs {
  activation?: 'silu' | 'swish' | 'none';
  channels_last?: 0 | 1;
}

export interface CausalConvInputs {
  input: { data: FloatArray; dims: number[] }; // [B,C,L] (channels_last: [B,L,C])
  weight: { data: FloatArray; dims: number[] }; // [C,1,K]
  bias?: { data: FloatArray; dims: number[] }; // [C]
  past_state?: { data: FloatArray; dims: number[] }; // [B,C,K−1] (channels_last: [B,K−1,C])
}

/** [d0,d1,d2] → [d0,d2,d1] */
export function swapLast(a: ArrayLike<number>, d0: number, d1: number, d2: number): Float64Array {
  const o = new Float64Array(d0 * d1 * d2);
  for (let i = 0; i < d0; i++)
    for (let j = 0; j < d1; j++) for (let k = 0; k < d2; k++) o[(i * d2 + k) * d1 + j] = a[(i * d1 + j) * d2 + k]!;
  return o;
}

export function causalConvWithState(
  inp: CausalConvInputs,
  a: CausalConvAttrs,
): { output: Float64Array; present_state: Float64Array; dims: { output: number[]; present_state: number[] } } {
  const last = a.channels_last === 1;
  const [b, d1, d2] = inp.input.dims as [number, number, number];
  const [c, l] = last ? [d2, d1] : [d1, d2];
  const k = inp.weight.dims[2]!;
  const x = last ? Float64Array.from(inp.input.data) : swapLast(inp.input.data, b, c, l); // [B,L,C]
  const past = inp.past_state ? (last ? swapLast(inp.past_state.data, b, k - 1, c) : Float64Array.from(inp.past_state.data)) : undefined; // [B,C,K−1]
  const act = a.activation === 'silu' || a.activation === 'swish' ? 'silu' : 'none';
  const r = causalConv(
    { data: x, shape: [b, l, c] },
    inp.weight.data,
    k,
    inp.bias?.data,
    past ? { data: past, shape: [b, c, k - 1] } : undefined,
    act,
  );
  return {
    output: last ? r.y.data : swapLast(r.y.data, b, l, c),
    present_state: last ? swapLast(r.state.data, b, c, k - 1) : r.state.data,
    dims: { output: [...inp.input.dims], present_state: last ? [b, k - 1, c] : [b, c, k - 1] },
  };
}
