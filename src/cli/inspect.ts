/** `mamba2-onnx inspect <model-dir|model.onnx> [--json]`: opsets, I/O, op counts, parameters, files. */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import type { ModelMeta } from '../package/meta.js';
import { loadModelSummary, type ModelSummary, type TensorInfoSummary } from '../graph/load.js';
import type { CliIO } from './errors.js';
import { formatBytes, formatCount, formatDims, table } from './format.js';
import { locateModel, readModelMeta } from './model-dir.js';

export interface InspectReport {
  model: ModelSummary;
  /** mamba2-onnx.json, when the model directory has one. */
  meta?: ModelMeta;
  files: { name: string; bytes: number }[];
}

export async function inspectModel(arg: string): Promise<InspectReport> {
  const loc = await locateModel(arg, 'model');
  const model = await loadModelSummary(loc.modelPath);
  const meta = loc.metaPath === undefined ? undefined : await readModelMeta(loc.metaPath);
  const names = [basename(loc.modelPath), ...model.externalData.map((f) => f.location)];
  if (meta !== undefined && loc.metaPath !== undefined) names.push(basename(loc.metaPath), ...(meta.files.tokenizer ?? []));
  const files: InspectReport['files'] = [];
  for (const name of new Set(names)) {
    try {
      files.push({ name, bytes: (await stat(join(loc.dir, name))).size });
    } catch {
      throw new Error(`model: '${name}' is listed by the model but missing from '${loc.dir}'`);
    }
  }
  return { model, meta, files };
}

export function registerInspect(program: Command, io: CliIO): void {
  program
    .command('inspect')
    .description('summarise an exported model: opsets, inputs/outputs, op counts, parameters, file sizes')
    .argument('<model>', 'model directory (with model.onnx) or an .onnx file')
    .option('--json', 'print the summary as JSON')
    .action(async (arg: string, flags: { json?: boolean }) => {
      const report = await inspectModel(arg);
      io.out(flags.json ? `${JSON.stringify(report, (_k, v: unknown) => (v === Infinity ? null : v), 2)}\n` : renderInspect(report));
    });
}

const domainName = (d: string): string => (d === '' ? 'ai.onnx' : d);
const opName = (key: string): string => key.replace(/^ai\.onnx::/, '');

function ioRows(list: readonly TensorInfoSummary[], meta: ModelMeta | undefined, side: 'inputs' | 'outputs'): string[][] {
  const roles = new Map((meta?.io[side] ?? []).map((e) => [e.name, e.role]));
  return list.map((t) => [t.name, t.dtype, formatDims(t.dims), roles.get(t.name) ?? '']);
}

/** Collapses per-layer state rows (`past_conv.0 … past_conv.23`) when there are many layers. */
function collapseLayers(rows: string[][]): string[][] {
  const out: string[][] = [];
  for (const r of rows) {
    const m = /^(.*)\.(\d+)$/.exec(r[0]!);
    const prev = out[out.length - 1];
    const pm = prev === undefined ? null : /^(.*)\.(\d+)(?:…(\d+))?$/.exec(prev[0]!);
    if (m && pm && pm[1] === m[1] && Number(pm[3] ?? pm[2]) + 1 === Number(m[2]) && prev!.slice(1).join() === r.slice(1).join()) {
      prev![0] = `${pm[1]}.${pm[2]}…${m[2]}`;
    } else {
      out.push([...r]);
    }
  }
  return out;
}

export function renderInspect(r: InspectReport): string {
  const m = r.model;
  const lines: string[] = [];
  const head: string[][] = [
    ['model', m.path],
    ['producer', `${`${m.producerName || '?'} ${m.producerVersion}`.trim()}, IR ${m.irVersion}`],
    [
      'opsets',
      Object.entries(m.opsetImports)
        .map(([d, v]) => `${domainName(d)} ${v}`)
        .join(', '),
    ],
  ];
  if (r.meta) {
    const c = r.meta.config;
    head.push(['source', r.meta.source]);
    head.push([
      'shape',
      `${c.nLayer} layers · d_model ${c.dModel} · heads ${c.nHeads}×${c.headDim} · d_state ${c.dState} · groups ${c.nGroups} · vocab ${formatCount(c.vocabSize)} · chunk ${c.chunkSize}`,
    ]);
    head.push(['ssd', `${r.meta.ssdForm}, weights ${r.meta.weightDType}, one-token path: ${r.meta.singleStep}`]);
  }
  lines.push(table(head));
  lines.push('', 'inputs', table(collapseLayers(ioRows(m.inputs, r.meta, 'inputs')), { indent: '  ' }));
  lines.push('', 'outputs', table(collapseLayers(ioRows(m.outputs, r.meta, 'outputs')), { indent: '  ' }));
  const ops = Object.entries(m.opCounts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const nodes = ops.reduce((s, [, n]) => s + n, 0);
  lines.push(
    '',
    `ops (${formatCount(nodes)} nodes, subgraphs included)`,
    table(
      ops.map(([k, n]) => [opName(k), formatCount(n)]),
      { right: [1], indent: '  ' },
    ),
  );
  for (const [fn, counts] of Object.entries(m.functionOpCounts)) {
    const body = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    lines.push(`  function ${fn}: ${body.map(([k, n]) => `${opName(k)}×${n}`).join(', ')}`);
  }
  const i = m.initializers;
  lines.push(
    '',
    `parameters  ${formatCount(i.parameters)} in ${formatCount(i.count)} initializers (${formatBytes(i.bytes)}: ${formatBytes(i.inlineBytes)} inline, ${formatBytes(i.externalBytes)} external)`,
  );
  const total = r.files.reduce((s, f) => s + f.bytes, 0);
  lines.push(
    '',
    'files',
    table([...r.files.map((f) => [f.name, formatBytes(f.bytes)]), ['total', formatBytes(total)]], { right: [1], indent: '  ' }),
  );
  return `${lines.join('\n')}\n`;
}
