/**
 * Which EP ran each node: ORT's profile of one call per length (prefill L, then L = 1: the If's
 * sequence and step branches), counted per op type and provider, If/Scan and the Memcpy nodes ORT
 * inserts where data crosses EPs included. Use it to see that an export change (e.g. the opset-23
 * RMSNormalization) moves no node off the GPU: compare the CPU and Memcpy columns of two exports.
 *
 *   npx tsx bench/ep-placement.ts <model-dir>... [--ep cpu|cuda|webgpu] [--L 1,512] [--json]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { ep: { type: 'string', default: 'cpu' }, L: { type: 'string', default: '1,64' }, json: { type: 'boolean', default: false } },
});
if (positionals.length === 0) throw new Error('usage: ep-placement.ts <model-dir>... [--ep cpu|cuda|webgpu] [--L 1,512] [--json]');
const ep = values.ep!;
const lengths = values.L!.split(',').map(Number);

interface Row {
  model: string;
  ep: string;
  L: number;
  nodes: number;
  /** nodes per provider (CPU, CUDA, WebGpu) */
  byProvider: Record<string, number>;
  /** MemcpyToHost + MemcpyFromHost nodes run */
  memcpy: number;
  /** op types that ran on the CPU EP, with counts (the ones a GPU EP did not take) */
  onCpu: Record<string, number>;
}

interface Meta {
  config: { vocabSize: number };
  io: { inputs: { name: string; role: string; dtype: string; shape: (number | string)[] }[] };
}

function feeds(meta: Meta, L: number): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  for (const e of meta.io.inputs) {
    if (e.role === 'input_ids') {
      f[e.name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: L }, (_, i) => BigInt(i % meta.config.vocabSize)),
        [1, L],
      );
      continue;
    }
    // batch 1; every other symbolic dim (past lengths) 0, except an attention mask spans the call
    const d = e.shape.map((x, i) => (typeof x === 'number' ? x : i === 0 ? 1 : e.role === 'attention_mask' ? L : 0));
    const n = d.reduce((a, b) => a * b, 1);
    f[e.name] =
      e.dtype === 'int64' ? new ort.Tensor('int64', new BigInt64Array(n).fill(1n), d) : new ort.Tensor('float32', new Float32Array(n), d);
  }
  return f;
}

async function placement(dir: string, L: number): Promise<Row> {
  const meta = JSON.parse(readFileSync(join(dir, 'mamba2-onnx.json'), 'utf8')) as Meta;
  const prefix = join(tmpdir(), `m2o-place-${process.pid}-${L}`);
  const s = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    executionProviders: [ep as ort.InferenceSession.ExecutionProviderConfig],
    enableProfiling: true,
    profileFilePrefix: prefix,
    logSeverityLevel: 3,
  });
  await s.run(feeds(meta, L));
  await s.release();
  const base = prefix.split('/').pop()!;
  const file = readdirSync(tmpdir())
    .filter((n) => n.startsWith(base) && n.endsWith('.json'))
    .map((n) => join(tmpdir(), n))[0];
  if (!file) throw new Error(`${dir}: ORT wrote no profile under ${prefix}*`);
  const ev = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; args?: { op_name?: string; provider?: string } }[];
  rmSync(file);
  const row: Row = { model: dir, ep, L, nodes: 0, byProvider: {}, memcpy: 0, onCpu: {} };
  for (const e of ev) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const p = (e.args?.provider ?? '?').replace('ExecutionProvider', '');
    row.nodes++;
    row.byProvider[p] = (row.byProvider[p] ?? 0) + 1;
    if (op.startsWith('Memcpy')) row.memcpy++;
    if (p === 'CPU') row.onCpu[op] = (row.onCpu[op] ?? 0) + 1;
  }
  return row;
}

const rows: Row[] = [];
for (const dir of positionals) for (const L of lengths) rows.push(await placement(dir, L));
if (values.json) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  const lines = ['| model | ep | L | nodes | per provider | Memcpy | ops on CPU |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const prov = Object.entries(r.byProvider)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const cpu = Object.entries(r.onCpu)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}×${v}`)
      .join(' ');
    lines.push(`| ${r.model} | ${r.ep} | ${r.L} | ${r.nodes} | ${prov} | ${r.memcpy} | ${cpu} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
