/**
 * The floor under decode on an EP, from two measurements in one process:
 *  1. the cost of one node: chains of N tiny element-wise nodes (Add/Mul by constants on [1,768],
 *     the size of a decode step's vectors), µs per node = (t_N − t_1)/(N − 1);
 *  2. the cost of carrying the recurrent state through one session.run: a graph s' = s·a + b over
 *     the 130m model's state (24 layers × [1,24,64,128] fp32 = 18.9 MB), fed from and returned to
 *     where the runtime keeps it (host tensors on cpu/cuda: onnxruntime-node returns CUDA outputs
 *     to the host; 'gpu-buffer' on webgpu, fed back the next call).
 * Then floor(tok/s) = 1000 / (nodes per step · µs/node / 1000 + state ms) for the step's node count.
 *  3. what one element-wise pass costs at prefill size (the in_proj output of L = 2048 tokens,
 *     [2048, 3352] fp32, 27 MB): the same chains on that tensor, ms per pass and GB/s (read + write).
 *
 *   npx tsx bench/node-overhead.ts [--ep cpu|cuda|webgpu] [--nodes 942] [--runs 20] [--big 2048x3352] [--json FILE]
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../src/graph/builder.js';
import * as op from '../src/graph/ops.js';
import { saveModel } from '../src/graph/serialize.js';
import { medianRunMs } from './time-run.js';

const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' },
    nodes: { type: 'string', default: '942' },
    runs: { type: 'string', default: '20' },
    json: { type: 'string' },
    big: { type: 'string', default: '2048x3352' },
  },
});
const ep = values.ep!;
const [stepNodes, runs] = [Number(values.nodes), Number(values.runs)];
const D = 768;
const STATE = [24, 24, 64, 128]; // layers·batch 1 folded: [24 layers, H, P, N]
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function session(
  build: (m: ModelBuilder) => void,
  opts: ort.InferenceSession.SessionOptions,
): Promise<{ s: ort.InferenceSession; dir: string }> {
  const m = new ModelBuilder({ name: 'node-overhead' });
  build(m);
  const dir = mkdtempSync(join(tmpdir(), 'm2o-nodes-'));
  await saveModel(m.finish(), dir, { externalData: 'never' });
  const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    executionProviders: [ep as ort.InferenceSession.ExecutionProviderConfig],
    ...opts,
  });
  return { s, dir };
}

/** Median ms of one run of a chain of n element-wise nodes on x [rows,cols] (default [1,D]). */
async function chain(n: number, rows = 1, cols = D): Promise<number> {
  const { s, dir } = await session((m) => {
    const g = m.graph;
    let x = g.input('x', 'float32', [rows, cols]); // [rows,cols]
    const a = g.constant('float32', [], [1.0001]);
    const b = g.constant('float32', [], [0.0001]);
    for (let i = 0; i < n; i++) x = i % 2 === 0 ? op.Mul(g, x, a) : op.Add(g, x, b); // [rows,cols]
    g.output(x, 'y');
  }, {});
  try {
    return await medianRunMs(s, { x: new ort.Tensor('float32', new Float32Array(rows * cols).fill(1), [rows, cols]) }, runs);
  } finally {
    await s.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median ms of one call that reads and rewrites the whole state, kept where the runtime keeps it. */
async function stateCall(): Promise<number> {
  const onDevice = ep === 'webgpu';
  const { s, dir } = await session(
    (m) => {
      const g = m.graph;
      const st = g.input('state', 'float32', STATE); // [24,H,P,N]
      const x = g.input('x', 'float32', [1]); // [1]
      g.output(op.Add(g, op.Mul(g, st, g.constant('float32', [], [0.5])), x), 'state_out'); // [24,H,P,N]
    },
    onDevice ? { preferredOutputLocation: 'gpu-buffer' } : {},
  );
  try {
    let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(STATE.reduce((p, q) => p * q, 1)), STATE);
    const x = new ort.Tensor('float32', Float32Array.of(1), [1]);
    const t: number[] = [];
    for (let r = 0; r < runs + 3; r++) {
      const t0 = performance.now();
      const out = await s.run({ state, x });
      const next = out.state_out!;
      if (onDevice && r > 0) state.dispose();
      state = next;
      if (r >= 3) t.push(performance.now() - t0);
    }
    // (no getData() on a gpu-buffer tensor: onnxruntime-node 1.30 aborts; the runtime's logits
    // download is what synchronises a real decode step)
    return median(t);
  } finally {
    await s.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

const lengths = [1, 250, 1000];
const ms: number[] = [];
for (const n of lengths) {
  process.stderr.write(`chain of ${n} nodes on ${ep}\n`);
  ms.push(await chain(n));
}
const usPerNode = ((ms[2]! - ms[0]!) / (lengths[2]! - lengths[0]!)) * 1000;
process.stderr.write(`state round trip on ${ep}\n`);
const stateMs = await stateCall();
const floorMs = (stepNodes * usPerNode) / 1000 + stateMs;
const [bigRows, bigCols] = values.big!.split('x').map(Number) as [number, number];
process.stderr.write(`element-wise passes on [${bigRows},${bigCols}] on ${ep}\n`);
const passMs = ((await chain(9, bigRows, bigCols)) - (await chain(1, bigRows, bigCols))) / 8;
const passGBs = (2 * 4 * bigRows * bigCols) / passMs / 1e6;
const row = {
  ep,
  runMs1: ms[0],
  runMs250: ms[1],
  runMs1000: ms[2],
  usPerNode,
  stateMs,
  stepNodes,
  floorTokPerS: 1000 / floorMs,
  big: [bigRows, bigCols],
  passMs,
  passGBs,
};
process.stdout.write(
  `| ep | one-node run | µs per extra node | state call (18.9 MB) | nodes per step | decode floor | pass over [${bigRows},${bigCols}] |\n|---|---:|---:|---:|---:|---:|---:|\n` +
    `| ${ep} | ${ms[0]!.toFixed(3)} ms | ${usPerNode.toFixed(2)} | ${stateMs.toFixed(2)} ms | ${stepNodes} | ${row.floorTokPerS.toFixed(0)} tok/s | ${passMs.toFixed(3)} ms (${passGBs.toFixed(0)} GB/s) |\n`,
);
if (values.json) appendFileSync(values.json, `${JSON.stringify(row)}\n`);
