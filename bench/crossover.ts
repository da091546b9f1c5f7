/**
 * Issue 9, "the paper's claim inside ONNX Runtime": the SSD layer (the exporter's chunked dual form,
 * fp32) against ONNX Runtime's own causal attention (fp16 by default) at equal heads and head dim,
 * batch 1, over L. The paper (§1) has SSD crossing FlashAttention-2 at 2K and 6× faster at 16K.
 *
 * Each column is one graph applying the layer R times in a chain to tensors generated inside the
 * graph from a [1] seed, and a baseline graph that generates and reduces the same tensors without
 * the layer (crossover-graphs.ts); ms per layer = (median t_R − median t_0) / R. Attention ÷ best
 * SSD > 1 means SSD is faster. One L at a time; every session is released before the next.
 *
 *   npx tsx bench/crossover.ts [--ep cpu|cuda|webgpu] [--lengths 2048,4096,8192,16384]
 *     [--heads 80] [--head-dim 64] [--state 128] [--chunk 128[,256]] [--segsum stable,diff]
 *     [--repeat 4] [--runs 5] [--attn mha,gqa,onnx[,ops]] [--attn-dtype fp16|fp32]
 *     [--check] [--check-length 130] [--allow-cpu-fallback] [--json FILE]
 *
 * On a non-CPU EP sessions are first created with session.disable_cpu_ep_fallback = 1; when ORT
 * refuses that (some node would run on the CPU EP) the column is still measured without it and
 * marked †; † cells do not count for the ratio or the crossover. --allow-cpu-fallback skips the
 * strict attempt. A sticky CUDA error (illegal memory access) leaves the process's device unusable:
 * later measurements are skipped and noted; rerun without the column that caused it. The CUDA EP runs
 * fp32 MatMul as TF32 by default (onnxruntime-node cannot pass use_tf32); NVIDIA_TF32_OVERRIDE=0 in
 * the environment turns that off.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { ModelIR } from '../src/graph/ir.js';
import { saveModel } from '../src/graph/serialize.js';
import { ssdSequential } from '../src/reference/ssd.js';
import {
  type AttnDtype,
  type AttnVariant,
  attentionFlops,
  attentionGraph,
  type Dims,
  type Segsum,
  ssdA,
  ssdFlops,
  ssdGraph,
} from './crossover-graphs.js';

const { values } = parseArgs({
  options: {
    ep: { type: 'string', default: 'cpu' },
    lengths: { type: 'string', default: '2048,4096,8192,16384' },
    heads: { type: 'string', default: '80' },
    'head-dim': { type: 'string', default: '64' },
    state: { type: 'string', default: '128' },
    chunk: { type: 'string', default: '128' },
    segsum: { type: 'string', default: 'stable,diff' },
    repeat: { type: 'string', default: '4' },
    runs: { type: 'string', default: '5' },
    attn: { type: 'string', default: 'mha,gqa,onnx' },
    'attn-dtype': { type: 'string', default: 'fp16' },
    check: { type: 'boolean', default: false },
    'check-length': { type: 'string', default: '130' },
    'allow-cpu-fallback': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

function oneOf<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new RangeError(`--${flag}: expected one of ${allowed.join('|')}, got "${raw}"`);
  return raw as T;
}
function posInt(flag: string, raw: string, min = 1): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${flag}: expected an integer ≥ ${min}, got "${raw}"`);
  return n;
}
const list = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
const ep = oneOf('ep', values.ep!, ['cpu', 'cuda', 'webgpu'] as const);
const lengths = list(values.lengths!).map((s) => posInt('lengths', s, 2));
const [H, P, N] = [posInt('heads', values.heads!), posInt('head-dim', values['head-dim']!), posInt('state', values.state!)];
const chunks = list(values.chunk!).map((s) => posInt('chunk', s));
const segsums = list(values.segsum!).map((s) => oneOf<Segsum>('segsum', s, ['stable', 'diff']));
const [R, runs, checkL] = [
  posInt('repeat', values.repeat!),
  posInt('runs', values.runs!),
  posInt('check-length', values['check-length']!, 2),
];
const variants = list(values.attn!).map((s) => oneOf<AttnVariant>('attn', s, ['mha', 'gqa', 'onnx', 'ops']));
const dtype = oneOf<AttnDtype>('attn-dtype', values['attn-dtype']!, ['fp16', 'fp32']);
const WARMUP = 2;

interface Column {
  key: string;
  title: string;
  ssd?: { chunk: number; segsum: Segsum };
  attn?: AttnVariant;
}
const columns: Column[] = [
  ...chunks.flatMap((chunk) =>
    segsums.map((segsum) => ({ key: `ssd-${chunk}-${segsum}`, title: `SSD (Q=${chunk}, ${segsum}) fp32`, ssd: { chunk, segsum } })),
  ),
  ...variants.map((v) => ({ key: v, title: `${v} ${dtype}`, attn: v })),
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`${s}\n`);
/** The gist of an ORT error: the CUDA/cuDNN/cuBLAS failure when there is one, else its first line (≤ 300 chars). */
function gist(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const node = /running (\w+) node/.exec(msg)?.[1];
  const gpu = /(?:CUDA|CUDNN|CUBLAS) failure \d+: [^;]*/.exec(msg)?.[0].trim();
  if (gpu) return `${node ? `${node}: ` : ''}${gpu}`;
  const line =
    msg
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? 'unknown error';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
/** Errors after which the CUDA context is unusable for the rest of the process. */
const STICKY = /illegal memory access|unspecified launch failure|misaligned address|device-side assert|CUDA failure 7\d\d/i;
let broken: string | undefined;
const FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/;

/** A saved model and its session, released with the temp dir by `close`. */
async function open(model: ModelIR): Promise<{ s: ort.InferenceSession; cpuFallback: boolean; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'm2o-crossover-'));
  try {
    await saveModel(model, dir, { externalData: 'auto' });
    const path = join(dir, 'model.onnx');
    const create = (strict: boolean) =>
      ort.InferenceSession.create(path, {
        executionProviders: [ep as ort.InferenceSession.ExecutionProviderConfig],
        logSeverityLevel: 3,
        ...(strict ? { extra: { session: { disable_cpu_ep_fallback: '1' } } } : {}),
      });
    const strict = ep !== 'cpu' && !values['allow-cpu-fallback'];
    let s: ort.InferenceSession;
    let cpuFallback = false;
    try {
      s = await create(strict);
    } catch (e) {
      if (!strict || !FALLBACK_REFUSED.test(String(e))) throw e;
      cpuFallback = true;
      s = await create(false);
    }
    return {
      s,
      cpuFallback,
      close: async () => {
        await s.release();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

const feeds = () => ({ seed: new ort.Tensor('float32', Float32Array.of(0.25), [1]) });

interface Timing {
  ms: number;
  value: number;
  cpuFallback: boolean;
}

/** Median wall time of `runs` session.run calls (after WARMUP), and the graph's `sum`. */
async function timed(model: ModelIR): Promise<Timing> {
  const { s, cpuFallback, close } = await open(model);
  try {
    let value = NaN;
    for (let w = 0; w < WARMUP; w++) value = Number((await s.run(feeds())).sum!.data[0]);
    const t: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await s.run(feeds());
      t.push(performance.now() - t0);
    }
    return { ms: median(t), value, cpuFallback };
  } finally {
    await close();
  }
}

/** All outputs of one run, as float32 arrays. */
async function outputs(model: ModelIR): Promise<Record<string, Float32Array>> {
  const { s, close } = await open(model);
  try {
    const out = await s.run(feeds());
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await close();
  }
}

type Outcome<T> = { ok: true; v: T } | { ok: false; note: string };
async function attempt<T>(what: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  if (broken) return { ok: false, note: `skipped: the ${ep} device has been unusable since ${broken}` };
  try {
    return { ok: true, v: await fn() };
  } catch (e) {
    const note = `not available on ${ep}: ${gist(e)}`;
    log(`  ${what}: ${note}`);
    if (STICKY.test(String(e))) {
      broken = `${what} failed`;
      log(`  (a sticky device error: everything after it in this process is skipped; rerun without that column)`);
    }
    return { ok: false, note };
  }
}

// ---- --check: the SSD chain against the sequential recurrence, each attention against causal softmax(q·kᵀ/√P)·v ----

/** max |a − b| (b = 0 when absent); NaN when a holds a non-finite value. */
function maxAbs(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) return NaN;
    m = Math.max(m, Math.abs(a[i]! - (b ? b[i]! : 0)));
  }
  return m;
}

/** Attention of q, k, v [L,H·P] in float64; causal (key ≤ query) or full. */
function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, L: number, causal: boolean): Float64Array {
  const y = new Float64Array(L * H * P);
  const w = new Float64Array(L);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < L; i++) {
      const end = causal ? i + 1 : L;
      let max = -Infinity;
      for (let j = 0; j < end; j++) {
        let s = 0;
        for (let p = 0; p < P; p++) s += q[i * H * P + h * P + p]! * k[j * H * P + h * P + p]!;
        w[j] = s / Math.sqrt(P);
        max = Math.max(max, w[j]!);
      }
      let z = 0;
      for (let j = 0; j < end; j++) z += w[j] = Math.exp(w[j]! - max);
      for (let j = 0; j < end; j++) for (let p = 0; p < P; p++) y[i * H * P + h * P + p]! += (w[j]! / z) * v[j * H * P + h * P + p]!;
    }
  }
  return y;
}

async function check(): Promise<boolean> {
  const d: Dims = { L: checkL, H, P, N };
  const rows: string[] = [];
  let ok = true;
  const add = (name: string, diff: number, ref: number, tol: number) => {
    const pass = Number.isFinite(diff) && diff <= tol * Math.max(1, ref);
    ok &&= pass;
    rows.push(
      `| ${name} | ${diff.toExponential(2)} | ${ref.toPrecision(3)} | ${tol.toExponential(0)}·max(1, max abs ref) | ${pass ? 'ok' : 'FAIL'} |`,
    );
  };
  for (const chunk of chunks) {
    for (const segsum of segsums) {
      log(`check: SSD Q=${chunk} ${segsum} at L=${checkL}`);
      const got = await attempt('check ssd', () => outputs(ssdGraph(d, { chunk, segsum, repeat: 1, apply: true, debug: true })));
      if (!got.ok) {
        rows.push(`| SSD Q=${chunk} ${segsum} vs sequential | n/a | | | ${got.note} |`);
        ok = false;
        continue;
      }
      const o = got.v;
      const t = (name: string, shape: number[]) => ({ data: o[name]!, shape });
      const want = ssdSequential(
        t('x', [1, checkL, H, P]),
        t('dt', [1, checkL, H]),
        ssdA(H),
        t('Bm', [1, checkL, 1, N]),
        t('Cm', [1, checkL, 1, N]),
      );
      // off the CPU, fp32 MatMul may run as TF32 (the CUDA EP's default; NVIDIA_TF32_OVERRIDE=0 turns it off): ≈ 4e-4 relative
      const tol = segsum === 'diff' || ep !== 'cpu' ? 1e-3 : 1e-4;
      add(`SSD Q=${chunk} ${segsum}: y vs sequential recurrence`, maxAbs(o.y!, want.y.data), maxAbs(want.y.data), tol);
    }
  }
  let sensitivity = false;
  for (const variant of variants) {
    log(`check: attention ${variant} ${dtype} at L=${checkL}`);
    const got = await attempt(`check ${variant}`, () => outputs(attentionGraph(d, { variant, dtype, repeat: 1, debug: true })));
    if (!got.ok) {
      rows.push(`| ${variant} ${dtype} | n/a | | | ${got.note} |`);
      continue;
    }
    const { q, k, v, y } = got.v as Record<'q' | 'k' | 'v' | 'y', Float32Array>;
    const causal = attentionRef(q, k, v, checkL, true);
    if (!sensitivity) {
      sensitivity = true;
      const full = attentionRef(q, k, v, checkL, false);
      rows.push(
        `| (sensitivity) non-causal vs causal reference | ${maxAbs(full, causal).toExponential(2)} | | must be ≫ the attention tolerances | |`,
      );
    }
    add(`${variant} ${dtype}: y vs causal softmax(q·kᵀ/√P)·v (float64)`, maxAbs(y, causal), maxAbs(causal), dtype === 'fp16' ? 1e-2 : 1e-4);
  }
  process.stdout.write(
    `Check at L=${checkL}, H=${H}, P=${P}, N=${N} (repeat 1):\n\n| check | max abs Δ | max abs ref | tolerance | result |\n|---|---:|---:|---|---|\n${rows.join('\n')}\n\n`,
  );
  return ok;
}

// ---- the benchmark ----

interface Cell {
  ms?: number;
  note?: string;
  cpuFallback?: boolean;
}

function record(L: number, col: Column, base: Timing, rep: Timing, flops: number): Cell {
  const ms = (rep.ms - base.ms) / R;
  const cpuFallback = base.cpuFallback || rep.cpuFallback;
  const finite = Number.isFinite(rep.value);
  const note = finite ? undefined : `sum not finite (${rep.value})`;
  if (values.json) {
    const row = {
      bench: 'crossover',
      ep,
      L,
      H,
      P,
      N,
      column: col.key,
      ...col.ssd,
      variant: col.attn,
      dtype: col.attn ? dtype : 'fp32',
      repeat: R,
      runs,
      msRepeat: rep.ms,
      msBase: base.ms,
      msLayer: ms,
      flops,
      tflops: ms > 0 ? flops / ms / 1e9 : null,
      cpuFallback,
      value: rep.value,
      note,
    };
    appendFileSync(values.json, `${JSON.stringify(row)}\n`);
  }
  log(
    `  ${col.title}: t_R ${rep.ms.toFixed(3)} ms, t_0 ${base.ms.toFixed(3)} ms → ${ms.toFixed(3)} ms/layer${cpuFallback ? ' (some nodes on CPU)' : ''}`,
  );
  return { ms, cpuFallback, note };
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toPrecision(3));
function fmtCell(c: Cell | undefined, flops: number): string {
  if (!c || c.ms === undefined) return 'n/a';
  const mark = `${c.cpuFallback ? ' †' : ''}${c.note ? ' ‡' : ''}`;
  if (c.ms <= 0) return `≤ 0 (noise)${mark}`;
  return `${fmtMs(c.ms)} ms · ${(flops / c.ms / 1e9).toPrecision(3)} TF/s${mark}`;
}

/** Fastest positive time among cells that ran wholly on the EP (a † cell partly timed the CPU EP). */
const best = (cells: (Cell | undefined)[]) =>
  Math.min(...cells.map((c) => (c?.ms !== undefined && c.ms > 0 && !c.cpuFallback ? c.ms : Infinity)));

async function benchLength(L: number, notes: Map<string, number[]>): Promise<Map<string, Cell>> {
  const note = (key: string) => notes.set(key, [...(notes.get(key) ?? []), L]);
  const d: Dims = { L, H, P, N };
  const row = new Map<string, Cell>();
  const groups: { cols: Column[]; what: string; baseline: () => ModelIR; graph: (c: Column) => ModelIR; flops: (c: Column) => number }[] = [
    {
      cols: columns.filter((c) => c.ssd),
      what: 'ssd',
      baseline: () => ssdGraph(d, { chunk: chunks[0]!, segsum: 'stable', repeat: R, apply: false }),
      graph: (c) => ssdGraph(d, { ...c.ssd!, repeat: R, apply: true }),
      flops: (c) => ssdFlops(d, c.ssd!.chunk),
    },
    {
      cols: columns.filter((c) => c.attn),
      what: 'attention',
      baseline: () => attentionGraph(d, { dtype, repeat: R }),
      graph: (c) => attentionGraph(d, { variant: c.attn, dtype, repeat: R }),
      flops: () => attentionFlops(d),
    },
  ];
  for (const grp of groups) {
    if (grp.cols.length === 0) continue;
    log(`L=${L}: ${grp.what} baseline (generation + reduce, R=${R})`);
    const base = await attempt(`L=${L} ${grp.what} baseline`, () => timed(grp.baseline()));
    for (const col of grp.cols) {
      if (!base.ok) {
        row.set(col.key, { note: `baseline ${base.note}` });
        note(`${col.title}: baseline ${base.note}`);
        continue;
      }
      log(`L=${L}: ${col.title} × ${R}`);
      const rep = await attempt(`L=${L} ${col.title}`, () => timed(grp.graph(col)));
      if (!rep.ok) {
        row.set(col.key, { note: rep.note });
        note(`${col.title}: ${rep.note}`);
        continue;
      }
      const cell = record(L, col, base.v, rep.v, grp.flops(col));
      if (cell.note) note(`‡ ${col.title}: ${cell.note}`);
      row.set(col.key, cell);
    }
  }
  return row;
}

let failed = false;
if (values.check) failed = !(await check());

const colFlops = (c: Column, L: number) => (c.ssd ? ssdFlops({ L, H, P, N }, c.ssd.chunk) : attentionFlops({ L, H, P, N }));
process.stdout.write(
  `SSD (fp32, chunked dual form) vs ONNX Runtime causal attention (${dtype}), ep ${ep}, batch 1, H=${H}, P=${P}, N=${N}, ` +
    `ms per layer = (t_R − t_0)/R with R=${R}, median of ${runs} runs; TF/s from matmul FLOPs (crossover-graphs.ts)\n\n` +
    `| L | ${columns.map((c) => c.title).join(' | ')} | attention ÷ best SSD |\n|---:|${columns.map(() => '---:|').join('')}---:|\n`,
);
const notes = new Map<string, number[]>();
let crossover: number | undefined;
let anyFallback = false;
for (const [i, L] of lengths.entries()) {
  const row = await benchLength(L, notes);
  const ssd = best(columns.filter((c) => c.ssd).map((c) => row.get(c.key)));
  const attn = best(columns.filter((c) => c.attn).map((c) => row.get(c.key)));
  const ratio = Number.isFinite(ssd) && Number.isFinite(attn) ? `${(attn / ssd).toFixed(2)}×` : 'n/a';
  if (crossover === undefined && ssd < attn && Number.isFinite(attn)) crossover = i;
  anyFallback ||= [...row.values()].some((c) => c.cpuFallback);
  process.stdout.write(`| ${L} | ${columns.map((c) => fmtCell(row.get(c.key), colFlops(c, L))).join(' | ')} | ${ratio} |\n`);
}
process.stdout.write('\n');
if (anyFallback)
  process.stdout.write(
    `† ORT refused the session with session.disable_cpu_ep_fallback = 1: some nodes ran on the CPU EP; † cells are left out of the ratio and the crossover.\n`,
  );
for (const [n, Ls] of notes) process.stdout.write(`- ${n} (L = ${Ls.join(', ')})\n`);
process.stdout.write(
  crossover === undefined
    ? 'no crossover in range\n'
    : `crossover: L = ${lengths[crossover]} (first L where the best SSD beats the best attention${crossover === 0 ? '; SSD is already faster at the smallest L measured' : ''})\n`,
);
if (failed) {
  log('crossover: --check FAILED (see the check table)');
  process.exitCode = 1;
}
