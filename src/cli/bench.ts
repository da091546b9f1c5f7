/**
 * `mamba2-onnx bench <model-dir>... [--ep cpu|webgpu|cuda] [--lengths 128,512,2048] [--decode N]
 *  [--runs R] [--backend node|capi] [--json] [--compare-json ref.json]`
 *
 * Prefill tokens/s at each length and decode tokens/s, median of R runs after a warm-up, one row
 * per (model, EP) so that several models or EPs sit side by side in one table. With several model
 * directories (e.g. the same preset exported with different --ssd forms) the rows compare them.
 */
import { basename } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  BACKEND_NAMES,
  EP_NAMES,
  Mamba2Model,
  preferredBackend,
  type Backend,
  type BackendName,
  type EpName,
  type Mamba2State,
} from '../runtime/index.js';
import { type CliIO, UsageError } from './errors.js';
import { intFlag, listFlag } from './flags.js';
import { table } from './format.js';
import { locateModel, readModelMeta } from './model-dir.js';

export interface BenchRow {
  model: string;
  ep: EpName;
  ssd: string;
  dtype: string;
  /** L → median tokens/s of a fresh-state prefill of L tokens. */
  prefill: Record<string, number>;
  decode: number;
  /** Set when the row could not run (the other rows still do). */
  error?: string;
}

export interface BenchOptions {
  eps: EpName[];
  lengths: number[];
  decodeTokens: number;
  runs: number;
  /** Untimed runs before timing (default 1). */
  warmup?: number;
  /** ONNX Runtime binding (default onnxruntime-node). */
  backend?: Backend;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Deterministic token ids below `vocab` (the content does not change the work). */
const ids = (n: number, vocab: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export async function benchModel(dir: string, ep: EpName, o: BenchOptions): Promise<BenchRow> {
  const meta = await readModelMeta((await locateModel(dir, 'model-dir')).metaPath!);
  const model = await Mamba2Model.load(dir, { ep: [ep], ...(o.backend ? { backend: o.backend } : {}) });
  try {
    const vocab = meta.config.realVocabSize;
    const prefill: Record<string, number> = {};
    for (const L of o.lengths) {
      const x = ids(L, vocab);
      const once = async () => {
        const r = await model.forward([x]);
        r.state.dispose();
      };
      for (let w = 0; w < (o.warmup ?? 1); w++) await once(); // warm-up: kernels compiled, buffers allocated
      const times: number[] = [];
      for (let k = 0; k < o.runs; k++) times.push(await timeIt(once));
      prefill[String(L)] = (L * 1000) / median(times);
    }
    const rates: number[] = [];
    for (let k = 0; k < Math.max(1, Math.min(o.runs, 3)); k++) {
      let state = (await model.forward([ids(16, vocab)])).state;
      let spare: Mamba2State | undefined; // as the generation loop: the state of two steps ago receives the next one
      let tok = 1;
      const step = async () => {
        const r = await model.forward([[tok]], state, spare ? { into: spare } : {});
        spare = state;
        state = r.state;
        tok = (tok * 31 + 7) % vocab;
      };
      for (let w = 0; w < 2; w++) await step();
      const ms = await timeIt(async () => {
        for (let i = 0; i < o.decodeTokens; i++) await step();
      });
      state.dispose();
      spare?.dispose();
      rates.push((o.decodeTokens * 1000) / ms);
    }
    return { model: dir, ep: model.ep, ssd: meta.ssdForm, dtype: meta.weightDType, prefill, decode: median(rates) };
  } finally {
    await model.release();
  }
}

export function renderBench(rows: BenchRow[], lengths: number[], ref?: BenchRow[]): string {
  const head = ['model', 'ep', 'ssd', 'dtype', ...lengths.map((L) => `prefill ${L}`), 'decode'];
  const find = (r: BenchRow) => ref?.find((x) => basename(x.model) === basename(r.model) && x.ep === r.ep);
  const cell = (v: number, base?: number) => `${v.toFixed(0)}${base ? ` (${(v / base).toFixed(2)}×)` : ''}`;
  const body = rows.map((r) => {
    const b = find(r);
    if (r.error) return [basename(r.model), r.ep, r.ssd, r.dtype, `error: ${r.error.slice(0, 100)}`];
    return [
      basename(r.model),
      r.ep,
      r.ssd,
      r.dtype,
      ...lengths.map((L) => cell(r.prefill[String(L)]!, b?.prefill[String(L)])),
      cell(r.decode, b?.decode),
    ];
  });
  return `tokens/s (median)${ref ? ', (×) = ratio to --compare-json' : ''}\n${table([head, ...body], { right: head.map((_, i) => i).slice(4) })}\n`;
}

export function registerBench(program: Command, io: CliIO): void {
  program
    .command('bench')
    .description('prefill and decode tokens/s of exported models, side by side (median of runs)')
    .argument('<model-dir...>', 'one or more exported model directories')
    .option('--ep <list>', `execution providers, one row each (${EP_NAMES.join(', ')})`, listFlag(EP_NAMES), ['cpu'] as EpName[])
    .option('--lengths <list>', 'prefill lengths', (v: string) => v.split(',').map((s) => intFlag(1, 1 << 20)(s.trim())), [128, 512, 2048])
    .option('--decode <N>', 'decode tokens per run', intFlag(1), 64)
    .option('--runs <R>', 'timed runs per measurement (median)', intFlag(1, 100), 5)
    .option('--warmup <W>', 'untimed runs before timing', intFlag(0, 100), 1)
    .addOption(
      program
        .createOption(
          '--backend <name>',
          "ONNX Runtime binding: 'node' (onnxruntime-node) or 'capi' (its C API through koffi; falls back to node with a note)",
        )
        .choices(BACKEND_NAMES)
        .default('node'),
    )
    .option('--json', 'print rows as JSON')
    .option('--compare-json <file>', 'a previous --json output: print ratios against it')
    .action(
      async (
        dirs: string[],
        flags: {
          ep: EpName[];
          lengths: number[];
          decode: number;
          runs: number;
          warmup: number;
          backend: BackendName;
          json?: boolean;
          compareJson?: string;
        },
      ) => {
        if (dirs.length === 0) throw new UsageError('give at least one model directory', 'bench');
        const { backend, fallbackReason } = await preferredBackend(flags.backend);
        if (fallbackReason) io.err(`note: ${fallbackReason}\n`);
        const o: BenchOptions = {
          eps: flags.ep,
          lengths: flags.lengths,
          decodeTokens: flags.decode,
          runs: flags.runs,
          warmup: flags.warmup,
          backend,
        };
        let ref: BenchRow[] | undefined;
        if (flags.compareJson) {
          const raw: unknown = JSON.parse(await readFile(flags.compareJson, 'utf8'));
          if (!Array.isArray(raw)) throw new Error(`--compare-json: expected a JSON array of bench rows, got ${typeof raw}`);
          ref = raw as BenchRow[];
        }
        const rows: BenchRow[] = [];
        for (const dir of dirs) {
          for (const ep of flags.ep) {
            if (!flags.json) io.err(`bench ${basename(dir)} on ${ep}…\n`);
            try {
              rows.push(await benchModel(dir, ep, o));
            } catch (e) {
              rows.push({
                model: dir,
                ep,
                ssd: '?',
                dtype: '?',
                prefill: {},
                decode: NaN,
                error: e instanceof Error ? e.message.split('\n')[0]! : String(e),
              });
            }
          }
        }
        io.out(flags.json ? `${JSON.stringify(rows, null, 2)}\n` : renderBench(rows, flags.lengths, ref));
      },
    );
}
