/**
 * The MatMul ceiling an EP reaches on the model's own prefill shapes, for issue 9's ratios:
 * 24 × (x[L,768]·W_in[768,3352] → ·W_out[3352,768]) chained in one graph (the 130m model's
 * projection shapes, inputs and weights on the device, one small output), GFLOP/s = FLOPs / time.
 *
 *   npx tsx bench/ceiling.ts [--ep cpu|webgpu|cuda] [--L 2048] [--layers 24] [--d 768] [--f 3352] [--dtype fp32|fp16]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../src/graph/builder.js';
import * as op from '../src/graph/ops.js';
import { saveModel } from '../src/graph/serialize.js';
import { tensorFromArray } from '../src/graph/tensor.js';

const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' },
    L: { type: 'string', default: '2048' },
    layers: { type: 'string', default: '24' },
    d: { type: 'string', default: '768' },
    f: { type: 'string', default: '3352' },
    runs: { type: 'string', default: '5' },
  },
});
const [L, NL, D, F, runs] = [values.L, values.layers, values.d, values.f, values.runs].map(Number) as [
  number,
  number,
  number,
  number,
  number,
];

const m = new ModelBuilder({ name: 'ceiling' });
const g = m.graph;
let x = g.input('x', 'float32', [L, D]);
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => (((i * 2654435761) >>> 0) / 2 ** 32 - 0.5) * 0.05);
for (let i = 0; i < NL; i++) {
  const w1 = g.initializer(`w_in.${i}`, tensorFromArray('float32', [D, F], rnd(D * F)));
  const w2 = g.initializer(`w_out.${i}`, tensorFromArray('float32', [F, D], rnd(F * D)));
  x = op.MatMul(g, op.MatMul(g, x, w1), w2);
}
g.output(op.ReduceSum(g, x, [0], true), 'y');
const dir = mkdtempSync(join(tmpdir(), 'm2o-ceiling-'));
try {
  await saveModel(m.finish(), dir, { externalData: 'always' });
  const eps = [values.ep!];
  const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    executionProviders: eps as ort.InferenceSession.ExecutionProviderConfig[],
  });
  const feeds = { x: new ort.Tensor('float32', rnd(L * D), [L, D]) };
  await s.run(feeds);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await s.run(feeds);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  const flops = NL * 2 * L * (D * F + F * D);
  process.stdout.write(`${JSON.stringify({ ep: values.ep, L, layers: NL, d: D, f: F, ms, gflops: flops / ms / 1e6 })}\n`);
  await s.release();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
