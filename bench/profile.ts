/**
 * Where a call's time goes: ORT's profiler on one exported model, per op type (kernel time as ORT
 * records it) next to the wall time of session.run, on a chosen EP.
 *   npx tsx bench/profile.ts <model-dir> [--ep cpu|cuda|webgpu] [--L 1] [--runs 6] [--top 12]
 */
import { execSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    ep: { type: 'string', default: 'cpu' },
    L: { type: 'string', default: '1' },
    runs: { type: 'string', default: '6' },
    top: { type: 'string', default: '12' },
  },
});
const dir = positionals[0]!;
const [L, runs] = [Number(values.L), Number(values.runs)];
const ep = values.ep!;
const prefix = `/tmp/m2o-prof-${process.pid}`;
const s = await ort.InferenceSession.create(`${dir}/model.onnx`, {
  executionProviders: [ep as ort.InferenceSession.ExecutionProviderConfig],
  enableProfiling: true,
  profileFilePrefix: prefix,
});
const meta = JSON.parse(readFileSync(`${dir}/mamba2-onnx.json`, 'utf8')) as {
  io: { inputs: { name: string; role: string; shape: (number | string)[] }[] };
};
const feeds: Record<string, ort.Tensor> = {
  input_ids: new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: L }, (_, i) => BigInt(i % 1000)),
    [1, L],
  ),
};
for (const e of meta.io.inputs) {
  if (e.role === 'input_ids') continue;
  const d = e.shape.map((x) => (typeof x === 'number' ? x : 1));
  feeds[e.name] = new ort.Tensor('float32', new Float32Array(d.reduce((a, b) => a * b, 1)), d);
}
await s.run(feeds);
const walls: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  await s.run(feeds);
  walls.push(performance.now() - t);
}
await s.release();
const file = execSync(`ls -t ${prefix}*.json | head -1`).toString().trim();
const ev = JSON.parse(readFileSync(file, 'utf8')) as {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; provider?: string };
}[];
rmSync(file);
const byOp = new Map<string, [number, number]>();
let total = 0;
let nodes = 0;
for (const e of ev) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.args?.op_name === 'If') continue;
  const k = `${e.args?.op_name ?? '?'}@${(e.args?.provider ?? '').replace('ExecutionProvider', '')}`;
  const v = byOp.get(k) ?? [0, 0];
  v[0] += e.dur;
  v[1]++;
  byOp.set(k, v);
  total += e.dur;
  nodes++;
}
const n = runs + 1;
walls.sort((a, b) => a - b);
const lines = [
  `${dir} ep ${values.ep} L ${L}: wall ${walls[Math.floor(runs / 2)]!.toFixed(2)} ms/run (median), recorded node time ${(total / n / 1000).toFixed(2)} ms/run, ${nodes / n} nodes/run`,
];
for (const [k, [d, c]] of [...byOp].sort((a, b) => b[1][0] - a[1][0]).slice(0, Number(values.top)))
  lines.push(`  ${k.padEnd(34)} ${(d / n / 1000).toFixed(3).padStart(9)} ms  ${(c / n).toFixed(0)} nodes`);
process.stdout.write(`${lines.join('\n')}\n`);
