/**
 * Writes contrib-ops/<Op>/cases.jsonc: seeded small inputs and the expected outputs from each op's
 * reference.ts. Run after changing a reference or a spec below:  npx tsx contrib-ops/make-cases.ts
 * (contrib-ops.test.ts checks that the committed files equal what this produces).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AttrValue, type CaseFile, HARNESSES, type TensorCase } from './harness.js';
import { mulberry32 } from '../src/runtime/sampling.js';

/** Inputs: name → dims and value range [lo, hi) (values are rounded to 3 decimals, exact in JSON). */
interface CaseSpec {
  name: string;
  attributes: Record<string, AttrValue>;
  inputs: Record<string, { dims: number[]; range?: [number, number] }>;
  tolerance?: number;
}

const SPECS: Record<string, CaseSpec[]> = {
  LinearAttention: [
    {
      name: 'gated, Mamba-2 mapping: inverse GQA (H_q = G = 2 < H_kv = H = 4), d_k = N = 3, d_v = P = 2, T = 5, batch 2, past_state',
      attributes: { update_rule: 'gated', q_num_heads: 2, kv_num_heads: 4, scale: 1 },
      inputs: {
        query: { dims: [2, 5, 6] },
        key: { dims: [2, 5, 6] },
        value: { dims: [2, 5, 8] },
        past_state: { dims: [2, 4, 3, 2] },
        decay: { dims: [2, 5, 4], range: [-1, 0] },
      },
    },
    {
      name: 'gated, one token (decode), H_q = H_kv = 3, no past_state',
      attributes: { update_rule: 'gated', q_num_heads: 3, kv_num_heads: 3, scale: 1 },
      inputs: {
        query: { dims: [1, 1, 12] },
        key: { dims: [1, 1, 12] },
        value: { dims: [1, 1, 6] },
        decay: { dims: [1, 1, 3], range: [-1, 0] },
      },
    },
    {
      name: 'gated, standard GQA (H_q = 4 > H_kv = 2), default scale 1/sqrt(d_k)',
      attributes: { update_rule: 'gated', q_num_heads: 4, kv_num_heads: 2, scale: 0 },
      inputs: {
        query: { dims: [1, 4, 16] },
        key: { dims: [1, 4, 8] },
        value: { dims: [1, 4, 6] },
        past_state: { dims: [1, 2, 4, 3] },
        decay: { dims: [1, 4, 2], range: [-1, 0] },
      },
    },
    {
      name: 'linear (no decay), H_q = H_kv = 2, T = 3',
      attributes: { update_rule: 'linear', q_num_heads: 2, kv_num_heads: 2, scale: 1 },
      inputs: { query: { dims: [1, 3, 4] }, key: { dims: [1, 3, 4] }, value: { dims: [1, 3, 6] }, past_state: { dims: [1, 2, 2, 3] } },
    },
  ],
  CausalConvWithState: [
    {
      name: 'channels-first, SiLU, bias and past_state, L = 5, K = 4, C = 3, batch 2',
      attributes: { activation: 'silu', channels_last: 0 },
      inputs: { input: { dims: [2, 3, 5] }, weight: { dims: [3, 1, 4] }, bias: { dims: [3] }, past_state: { dims: [2, 3, 3] } },
    },
    {
      name: 'channels-last (the layout the contrib form uses), SiLU, L = 2 < K − 1 (state keeps old columns)',
      attributes: { activation: 'silu', channels_last: 1 },
      inputs: { input: { dims: [2, 2, 3] }, weight: { dims: [3, 1, 4] }, bias: { dims: [3] }, past_state: { dims: [2, 3, 3] } },
    },
    {
      name: 'no bias, no past_state (zero padding), no activation, L = 6',
      attributes: { activation: 'none', channels_last: 0 },
      inputs: { input: { dims: [1, 2, 6] }, weight: { dims: [2, 1, 3] } },
    },
  ],
  SSDChunkScan: [
    {
      name: 'G = 2 < H = 4, L = 7 not a multiple of Q = 4, batch 2, non-zero h0',
      attributes: { chunk_size: 4, n_groups: 2, dt_limit: [0, 1e9] },
      inputs: {
        x: { dims: [2, 7, 4, 2] },
        dt: { dims: [2, 7, 4], range: [0.01, 0.5] },
        A: { dims: [4], range: [-2, -0.1] },
        B: { dims: [2, 7, 2, 3] },
        C: { dims: [2, 7, 2, 3] },
        h0: { dims: [2, 4, 2, 3] },
      },
    },
    {
      name: 'one token through the chunked body (L = 1, Q = 8), G = 1',
      attributes: { chunk_size: 8, n_groups: 1, dt_limit: [0.001, 0.1] },
      inputs: {
        x: { dims: [1, 1, 2, 3] },
        dt: { dims: [1, 1, 2], range: [0.001, 0.1] },
        A: { dims: [2], range: [-2, -0.1] },
        B: { dims: [1, 1, 1, 4] },
        C: { dims: [1, 1, 1, 4] },
        h0: { dims: [1, 2, 3, 4] },
      },
    },
    {
      name: 'three full chunks (L = 12, Q = 4), G = H = 2, zero h0',
      attributes: { chunk_size: 4, n_groups: 2, dt_limit: [0, 1e9] },
      inputs: {
        x: { dims: [1, 12, 2, 2] },
        dt: { dims: [1, 12, 2], range: [0.01, 0.5] },
        A: { dims: [2], range: [-2, -0.1] },
        B: { dims: [1, 12, 2, 2] },
        C: { dims: [1, 12, 2, 2] },
        h0: { dims: [1, 2, 2, 2], range: [0, 0] },
      },
    },
  ],
};

const rng = mulberry32; // the runtime's sampler RNG: same seed, same cases

/** Float32 values printed with enough digits to round-trip to the same float32. */
const f32 = (v: number): number => Number(Math.fround(v).toPrecision(9));

export function makeCases(op: string): CaseFile {
  const h = HARNESSES[op];
  const specs = SPECS[op];
  if (!h || !specs) throw new RangeError(`op: expected one of ${Object.keys(SPECS).join(', ')}, got '${op}'`);
  return {
    op: h.op,
    domain: h.domain,
    version: h.version,
    cases: specs.map((s, k) => {
      const r = rng(1000 + 17 * k + op.length);
      const inputs: Record<string, TensorCase> = {};
      for (const [n, spec] of Object.entries(s.inputs)) {
        const [lo, hi] = spec.range ?? [-1, 1];
        const count = spec.dims.reduce((a, b) => a * b, 1);
        inputs[n] = { dims: spec.dims, data: Array.from({ length: count }, () => Math.round((lo + (hi - lo) * r()) * 1000) / 1000 + 0) };
      }
      const arrs = Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, { data: Float32Array.from(t.data), dims: t.dims }]));
      const ref = h.reference(arrs, s.attributes);
      const outputs: Record<string, TensorCase> = {};
      for (const n of h.outputs) outputs[n] = { dims: ref[n]!.dims, data: Array.from(ref[n]!.data, f32) };
      return { name: s.name, attributes: s.attributes, inputs, outputs, tolerance: s.tolerance ?? 1e-5 };
    }),
  };
}

/** JSON with each number array on one line. */
export function formatCases(f: CaseFile): string {
  const json = JSON.stringify(f, null, 2).replace(
    /\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g,
    (_m, body: string) => `[${body.split(/,\s*/).join(', ')}]`,
  );
  return `// ${f.domain}::${f.op} test cases: inputs → expected outputs of ${f.op}/reference.ts (float64).\n// Generated by contrib-ops/make-cases.ts; do not edit by hand.\n${json}\n`;
}

export const CASE_OPS = Object.keys(SPECS);

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const op of CASE_OPS) {
    const file = join(import.meta.dirname, op, 'cases.jsonc');
    writeFileSync(file, formatCases(makeCases(op)));
    process.stdout.write(`wrote ${file}\n`);
  }
}
