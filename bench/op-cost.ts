/**
 * What one node of each op type the decode step uses costs on an EP: chains of N nodes of one op on
 * decode-sized tensors ([1, 3352], the in_proj output of the 130m model), µs per node =
 * (t_N − t_1)/(N − 1). A chain of identical nodes is a lower bound on what the same op costs in the
 * real step (bench/node-overhead.ts); the ranking says which ops to avoid there.
 *
 *   npx tsx bench/op-cost.ts [--ep cpu|cuda|webgpu] [--n 200] [--runs 15]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { GraphBuilder } from '../src/graph/builder.js';
import { ModelBuilder } from '../src/graph/builder.js';
import * as op from '../src/graph/ops.js';
import { saveModel } from '../src/graph/serialize.js';
import type { Value } from '../src/graph/value.js';
import { medianRunMs } from './time-run.js';

const { values } = parseArgs({
  options: { ep: { type: 'string', default: 'cpu' }, n: { type: 'string', default: '200' }, runs: { type: 'string', default: '15' } },
});
const [ep, N, runs] = [values.ep!, Number(values.n), Number(values.runs)];
const F = 3352;

/** One link of a chain: x [1,F] → [1,F]. */
const LINKS: Record<string, (g: GraphBuilder, x: Value, i: number) => Value> = {
  Add: (g, x) => op.Add(g, x, g.constant('float32', [], [1e-4])),
  Mul: (g, x) => op.Mul(g, x, g.constant('float32', [], [1.0001])),
  'Split (3 ways, first kept + the rest concatenated back)': (g, x) => op.Concat(g, op.Split(g, x, [1536, 1792, 24], -1), -1),
  'Concat (2 slices back together)': (g, x) => op.Concat(g, [op.Slice(g, x, [0], [1536], [1]), op.Slice(g, x, [1536], [F], [1])], 1),
  'Reshape ([1,F] ↔ [F,1])': (g, x, i) => op.Reshape(g, x, i % 2 === 0 ? [F, 1] : [1, F]),
  Sigmoid: (g, x) => op.Sigmoid(g, x),
  Softplus: (g, x) => op.Softplus(g, x),
  Exp: (g, x) => op.Exp(g, op.Mul(g, x, g.constant('float32', [], [-1e-3]))),
  RMSNormalization: (g, x) => op.RMSNormalization(g, x, g.constant('float32', [F], new Float32Array(F).fill(1)), 1e-5),
  'Gemm [1,F]·[F,F]ᵀ/8 (F/8 = 419 outputs, then tiled back)': (g, x) => {
    const w = g.constant('float32', [F / 8, F], new Float32Array((F / 8) * F).fill(1e-4));
    return op.Concat(
      g,
      Array.from({ length: 8 }, () => op.Gemm(g, x, w, undefined, { transB: true })),
      1,
    );
  },
};

async function timeChain(link: (g: GraphBuilder, x: Value, i: number) => Value, n: number): Promise<number> {
  const m = new ModelBuilder({ name: 'op-cost' });
  const g = m.graph;
  let x = g.input('x', 'float32', [1, F]); // [1,F]
  for (let i = 0; i < n; i++) x = link(g, x, i); // [1,F] (or [F,1] halfway through a Reshape pair)
  if (x.shape[0] !== 1) x = op.Reshape(g, x, [1, F]);
  g.output(x, 'y');
  const dir = mkdtempSync(join(tmpdir(), 'm2o-opcost-'));
  try {
    await saveModel(m.finish(), dir, { externalData: 'never' });
    const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
      executionProviders: [ep as ort.InferenceSession.ExecutionProviderConfig],
      logSeverityLevel: 3,
    });
    try {
      return await medianRunMs(s, { x: new ort.Tensor('float32', new Float32Array(F).fill(0.5), [1, F]) }, runs);
    } finally {
      await s.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const [name, link] of Object.entries(LINKS)) {
  process.stderr.write(`${name} on ${ep}\n`);
  try {
    const us = (((await timeChain(link, N)) - (await timeChain(link, 2))) / (N - 2)) * 1000;
    rows.push(`| ${name} | ${us.toFixed(2)} |`);
  } catch (e) {
    rows.push(`| ${name} | failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 80)} |`);
  }
}
process.stdout.write(
  `µs per link on ${ep} (chains of ${N}, [1,${F}] fp32; a link may be more than one node: see its name)\n\n| link | µs |\n|---|--:|\n${rows.join('\n')}\n`,
);
