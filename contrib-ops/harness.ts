/**
 * Shared by make-cases.ts (writes <Op>/cases.jsonc) and contrib-ops.test.ts (runs them): the case
 * format, a JSONC reader, and per op its TS reference and a one-node model built with the
 * project's typed wrappers.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../src/graph/builder.js';
import type { GraphBuilder } from '../src/graph/builder.js';
import type { ModelIR } from '../src/graph/ir.js';
import * as op from '../src/graph/ops.js';
import { CausalConvWithState, LinearAttention } from '../src/graph/ops-contrib.js';
import { MS_DOMAIN, PROJECT_DOMAIN } from '../src/graph/opset.js';
import { saveModel } from '../src/graph/serialize.js';
import type { Value } from '../src/graph/value.js';
import { Ctx } from '../src/export/blocks.js';
import { makeConfig } from '../src/export/config.js';
import { SSD_OP, SSD_OP_VERSION, ssdFunction } from '../src/export/ssd-function.js';
import { type CausalConvAttrs, causalConvWithState } from './CausalConvWithState/reference.js';
import { type LinearAttentionAttrs, linearAttention } from './LinearAttention/reference.js';
import { ssdChunkScan } from './SSDChunkScan/reference.js';

export interface TensorCase {
  dims: number[];
  data: number[];
}

export type AttrValue = number | string | number[];

export interface OpCase {
  name: string;
  attributes: Record<string, AttrValue>;
  inputs: Record<string, TensorCase>;
  /** Expected outputs, from reference.ts in float64. */
  outputs: Record<string, TensorCase>;
  /** Max |got − expected| accepted (fp32 kernels against a float64 reference). */
  tolerance: number;
}

export interface CaseFile {
  op: string;
  domain: string;
  version: number;
  cases: OpCase[];
}

type Arr = { data: Float32Array; dims: number[] };
type Out = Record<string, { data: Float64Array; dims: number[] }>;

export interface OpHarness {
  op: string;
  domain: string;
  version: number;
  /** Input names in schema order (absent optional inputs are left out of a case). */
  inputs: string[];
  outputs: string[];
  reference(inputs: Record<string, Arr>, attrs: Record<string, AttrValue>): Out;
  /** Builds the node from graph inputs named as in the case; returns the outputs by name. */
  build(g: GraphBuilder, inputs: Record<string, Value>, attrs: Record<string, AttrValue>): Record<string, Value>;
}

const num = (a: Record<string, AttrValue>, k: string): number => {
  const v = a[k];
  if (typeof v !== 'number') throw new TypeError(`attribute '${k}': expected a number, got ${JSON.stringify(v)}`);
  return v;
};

export const HARNESSES: Record<string, OpHarness> = {
  LinearAttention: {
    op: 'LinearAttention',
    domain: MS_DOMAIN,
    version: 1,
    inputs: ['query', 'key', 'value', 'past_state', 'decay'],
    outputs: ['output', 'present_state'],
    reference: (i, a) => {
      const r = linearAttention(
        { query: i.query!, key: i.key!, value: i.value!, past_state: i.past_state, decay: i.decay },
        a as unknown as LinearAttentionAttrs,
      );
      return { output: { data: r.output, dims: r.dims.output }, present_state: { data: r.present_state, dims: r.dims.present_state } };
    },
    build: (g, i, a) => {
      const r = LinearAttention(g, i.query!, i.key!, i.value!, i.past_state, i.decay, {
        updateRule: a.update_rule as 'linear' | 'gated',
        qNumHeads: num(a, 'q_num_heads'),
        kvNumHeads: num(a, 'kv_num_heads'),
        scale: num(a, 'scale'),
      });
      return { output: r.y, present_state: r.state };
    },
  },
  CausalConvWithState: {
    op: 'CausalConvWithState',
    domain: MS_DOMAIN,
    version: 1,
    inputs: ['input', 'weight', 'bias', 'past_state'],
    outputs: ['output', 'present_state'],
    reference: (i, a) => {
      const r = causalConvWithState(
        { input: i.input!, weight: i.weight!, bias: i.bias, past_state: i.past_state },
        a as unknown as CausalConvAttrs,
      );
      return { output: { data: r.output, dims: r.dims.output }, present_state: { data: r.present_state, dims: r.dims.present_state } };
    },
    build: (g, i, a) => {
      const r = CausalConvWithState(g, i.input!, i.weight!, i.bias, i.past_state, {
        activation: a.activation as 'silu' | 'none',
        channelsLast: a.channels_last === 1,
      });
      return { output: r.y, present_state: r.state };
    },
  },
  SSDChunkScan: {
    op: SSD_OP,
    domain: PROJECT_DOMAIN,
    version: SSD_OP_VERSION,
    inputs: ['x', 'dt', 'A', 'B', 'C', 'h0'],
    outputs: ['y', 'hT'],
    reference: (i) => {
      const r = ssdChunkScan({ x: i.x!, dt: i.dt!, A: i.A!, B: i.B!, C: i.C!, h0: i.h0! });
      return { y: { data: r.y, dims: r.dims.y }, hT: { data: r.hT, dims: r.dims.hT } };
    },
    build: (g, i, a) => {
      const [, , H, P] = i.x!.shape as number[];
      const [, , G, N] = i.B!.shape as number[];
      const lim = a.dt_limit as number[];
      const c = makeConfig({
        dModel: H! * P!,
        expand: 1,
        nLayer: 1,
        vocabSize: 8,
        headDim: P,
        dState: N,
        nGroups: G,
        chunkSize: num(a, 'chunk_size'),
        dtLimit: [lim[0]!, lim[1]!],
      });
      if (c.nGroups !== num(a, 'n_groups')) throw new RangeError(`n_groups: expected ${G} (from B), got ${a.n_groups}`);
      const r = ssdFunction(new Ctx(g, c), { x: i.x!, dt: i.dt!, A: i.A!, Bm: i.B!, Cm: i.C!, h0: i.h0! });
      return { y: r.y, hT: r.hT };
    },
  },
};

/** The one-node model of a case (static shapes from the case). */
export function caseModel(h: OpHarness, cs: OpCase): ModelIR {
  const m = new ModelBuilder({ name: h.op, opsets: { [h.domain]: h.version } });
  const g = m.graph;
  const ins: Record<string, Value> = {};
  for (const n of h.inputs) if (cs.inputs[n]) ins[n] = g.input(n, 'float32', cs.inputs[n].dims);
  const outs = h.build(g, ins, cs.attributes);
  for (const n of h.outputs) g.output(outs[n]!, n, cs.outputs[n]!.dims);
  return m.finish();
}

export interface RunResult {
  outputs: Record<string, Float32Array>;
  /** Each executed node's op type → the execution providers that ran it (from ORT's profile). */
  placement: Record<string, string[]>;
}

/** Runs a case in onnxruntime-node on one EP, with profiling on to see which EP ran each node. */
export async function runCase(h: OpHarness, cs: OpCase, ep: 'cpu' | 'webgpu'): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'm2o-op-'));
  try {
    await saveModel(caseModel(h, cs), dir, { externalData: 'never' });
    const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
      executionProviders: [ep],
      enableProfiling: true,
      profileFilePrefix: join(dir, 'profile'),
    });
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(cs.inputs)) feeds[k] = new ort.Tensor('float32', Float32Array.from(v.data), v.dims);
    const out = await s.run(feeds);
    s.endProfiling();
    await s.release();
    const outputs: Record<string, Float32Array> = {};
    for (const n of h.outputs) outputs[n] = out[n]!.data as Float32Array;
    return { outputs, placement: placementFrom(dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ProfileEvent {
  cat: string;
  args?: { op_name?: string; provider?: string };
}

function placementFrom(dir: string): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const f of readdirSync(dir).filter((n) => n.startsWith('profile'))) {
    for (const e of JSON.parse(readFileSync(join(dir, f), 'utf8')) as ProfileEvent[]) {
      if (e.cat !== 'Node' || !e.args?.op_name || !e.args.provider) continue;
      out[e.args.op_name] ??= new Set();
      out[e.args.op_name]!.add(e.args.provider);
    }
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

/** Why the WebGPU EP cannot run here, or undefined when it can (a one-Add model is run). */
export async function webgpuUnavailable(): Promise<string | undefined> {
  const m = new ModelBuilder({ name: 'probe' });
  const x = m.graph.input('x', 'float32', [2]);
  m.graph.output(op.Add(m.graph, x, x), 'y');
  const dir = mkdtempSync(join(tmpdir(), 'm2o-probe-'));
  try {
    await saveModel(m.finish(), dir, { externalData: 'never' });
    const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), { executionProviders: ['webgpu'] });
    await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2]), [2]) });
    await s.release();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message.split('\n')[0] : String(e);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JSON with // and /* *\/ comments (outside strings). */
export function parseJsonc(text: string, file: string): unknown {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new SyntaxError(`${file}: unterminated /* comment`);
      i = end + 1;
    } else out += ch;
  }
  try {
    return JSON.parse(out);
  } catch (e) {
    throw new SyntaxError(`${file}: ${(e as Error).message}`);
  }
}
