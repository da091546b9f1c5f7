/**
 * `mamba2-onnx export <checkpoint-dir> --out <dir>` and
 * `mamba2-onnx export --preset NAME --random-weights [--seed N] --out <dir>`; `--list-presets`.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { availableForms } from '../export/forms.js';
import { exportModel, type ExportSource } from '../export/index.js';
import { checkOutputParent } from '../export/out-parent.js';
import { META_FILE, type SsdForm } from '../package/meta.js';
import { listPresets, loadPreset } from '../export/presets.js';
import { UsageError, type CliIO } from './errors.js';
import { intFlag } from './flags.js';
import { formatBytes, formatCount, formatDuration, table } from './format.js';
import { exportProgress } from './progress.js';

interface ExportFlags {
  out?: string;
  chunkSize?: number;
  logits: 'all' | 'last';
  paths: 'both' | 'step' | 'sequence';
  segsum: 'stable' | 'diff';
  conv: 'conv' | 'shifted';
  rmsnorm: 'ops' | 'fused';
  step: 'ops' | 'contrib';
  dtype: 'fp32' | 'fp16' | 'int8' | 'int4';
  blockSize?: number;
  accuracyLevel?: number;
  quantizeEmbedding: boolean;
  externalData: 'auto' | 'always' | 'never';
  ssd: SsdForm;
  force?: boolean;
  preset?: string;
  randomWeights?: boolean;
  seed?: number;
  listPresets?: boolean;
}

export function registerExport(program: Command, io: CliIO): void {
  program
    .command('export')
    .description(
      'export a Mamba-2 checkpoint (HF safetensors or mamba_ssm pytorch_model.bin), or a preset shape with random weights, to an ONNX model directory',
    )
    .argument('[checkpoint-dir]', 'checkpoint directory (config.json + weights)')
    .option('-o, --out <dir>', 'model directory to write (model.onnx, model.onnx.data, mamba2-onnx.json, tokenizer files)')
    .option('--chunk-size <Q>', "SSD chunk size Q (default: the checkpoint's, at most 128)", intFlag(1, 4096))
    .addOption(program.createOption('--ssd <form>', 'how the sequence path computes the SSD').choices(availableForms()).default('chunked'))
    .addOption(
      program
        .createOption('--dtype <type>', 'weight storage: fp16 matmuls, or int8/int4 weight-only MatMulNBits (SSD, state, norms stay fp32)')
        .choices(['fp32', 'fp16', 'int8', 'int4'])
        .default('fp32'),
    )
    .option('--block-size <N>', 'int8/int4: quantization block size along K (power of two ≥ 16)', intFlag(16, 4096))
    .option(
      '--accuracy-level <L>',
      'int8/int4: MatMulNBits accuracy_level (0 default: exact, slow int8 on CPU; 4: int8 activations, 10× faster int8 decode on CPU, less exact)',
      intFlag(0, 4),
    )
    .option('--no-quantize-embedding', 'int8/int4: keep the embedding (and a tied head) in fp32')
    .addOption(
      program
        .createOption(
          '--segsum <how>',
          "intra-chunk segment sums: 'stable' cumulative sums (exact) or 'diff' of cumulative sums (faster on GPUs, ≈|Acs|·2⁻²³ error in the exponent)",
        )
        .choices(['stable', 'diff'])
        .default('stable'),
    )
    .addOption(
      program
        .createOption(
          '--conv <how>',
          "prefill conv: K 'shifted' products (no Conv node, no sequence transposes) or one grouped 'conv' node",
        )
        .choices(['shifted', 'conv'])
        .default('shifted'),
    )
    .addOption(
      program
        .createOption(
          '--rmsnorm <how>',
          "RMSNorms in standard 'ops' (ai.onnx 21; ORT's CPU and CUDA optimizers fuse them) or one 'fused' RMSNormalization node each (ai.onnx 23: fewer WebGPU nodes, but ORT 1.30's WebGPU EP runs the opset-23 If on the CPU)",
        )
        .choices(['ops', 'fused'])
        .default('ops'),
    )
    .addOption(
      program
        .createOption(
          '--step <how>',
          "the one-token step: 'contrib' (ORT's CausalConvWithState for the conv, LinearAttention for the state update in its own layout: fewer nodes, one pass over the state) or standard 'ops' (for runtimes other than ONNX Runtime)",
        )
        .choices(['ops', 'contrib'])
        .default('contrib'),
    )
    .addOption(
      program
        .createOption('--paths <which>', "'both': If on sequence == 1 (default); 'step' / 'sequence': one path only (for measurements)")
        .choices(['both', 'step', 'sequence'])
        .default('both'),
    )
    .addOption(
      program
        .createOption('--logits <which>', "'last': logits of the last position only ([batch,1,V]; faster prefill, no per-position logits)")
        .choices(['all', 'last'])
        .default('all'),
    )
    .addOption(
      program.createOption('--external-data <mode>', 'weights in model.onnx.data').choices(['auto', 'always', 'never']).default('auto'),
    )
    .option('-f, --force', 'replace --out if it holds a previous export')
    .option('--preset <name>', 'a model shape from models/ (see --list-presets) or a preset .json path, instead of a checkpoint')
    .option('--random-weights', 'with --preset: seeded random weights in the checkpoint value ranges')
    .option('--seed <N>', 'with --random-weights: the seed (default 0)', intFlag(0))
    .option('--list-presets', 'list the presets and exit')
    .action(async (checkpointDir: string | undefined, flags: ExportFlags) => {
      if (flags.listPresets) {
        io.out(presetList());
        return;
      }
      const src = sourceFrom(checkpointDir, flags);
      if (flags.out === undefined) throw new UsageError('--out: expected the model directory to write, got nothing', 'export');
      if ('checkpointDir' in src) await checkCheckpointDir(src.checkpointDir);
      await checkOut(flags.out, 'checkpointDir' in src ? src.checkpointDir : undefined, flags.force === true);
      await runExport(io, src, { ...flags, out: flags.out });
    });
}

function sourceFrom(checkpointDir: string | undefined, f: ExportFlags): ExportSource {
  if (f.preset !== undefined) {
    if (checkpointDir !== undefined) {
      throw new UsageError(`expected a checkpoint directory or --preset, got both ('${checkpointDir}' and --preset ${f.preset})`, 'export');
    }
    if (!f.randomWeights) {
      throw new UsageError(
        `--preset ${f.preset}: a preset is only a shape, it has no weights; add --random-weights (and optionally --seed N)`,
        'export',
      );
    }
    const isPath = f.preset.endsWith('.json') || f.preset.includes('/') || f.preset.includes('\\');
    if (!isPath && !listPresets().includes(f.preset)) {
      throw new UsageError(`--preset: expected one of ${listPresets().join(', ')} (or a preset .json path), got '${f.preset}'`, 'export');
    }
    return { preset: f.preset, randomWeights: true, seed: f.seed ?? 0 };
  }
  if (f.randomWeights) throw new UsageError('--random-weights: only applies with --preset NAME', 'export');
  if (f.seed !== undefined) throw new UsageError('--seed: only applies with --preset NAME --random-weights', 'export');
  if (checkpointDir === undefined) {
    throw new UsageError('expected a checkpoint directory or --preset NAME --random-weights, got neither', 'export');
  }
  return { checkpointDir };
}

async function checkCheckpointDir(dir: string): Promise<void> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new Error(`checkpoint-dir: expected a checkpoint directory, got '${dir}' (not found)`);
  }
  if (!isDir) throw new Error(`checkpoint-dir: expected a checkpoint directory, got '${dir}' (a file)`);
}

const inside = (child: string, parent: string): boolean => {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !r.startsWith(sep));
};

/**
 * Refuses outputs that --force would destroy by mistake: a file, the checkpoint itself (or a folder
 * holding it), or a non-empty directory that is not a previous export (no mamba2-onnx.json); and
 * outputs that cannot be written (a parent on /proc, read-only, a file: out-parent.ts), before
 * anything is read.
 */
async function checkOut(out: string, checkpointDir: string | undefined, force: boolean): Promise<void> {
  const path = resolve(out);
  if (checkpointDir !== undefined && inside(resolve(checkpointDir), path)) {
    throw new UsageError(
      `--out: expected a directory apart from the checkpoint, got '${out}' (it holds the checkpoint '${checkpointDir}')`,
      'export',
    );
  }
  await checkOutputParent(out, '--out');
  if (!existsSync(path)) return;
  if (!(await stat(path)).isDirectory()) throw new Error(`--out: expected a directory, got '${out}' (an existing file)`);
  const entries = await readdir(path);
  if (entries.length === 0) return;
  if (!force) throw new Error(`--out: '${out}' exists and is not empty; pass --force to replace a previous export`);
  if (!entries.includes(META_FILE)) {
    throw new Error(`--out: refusing to replace '${out}': it is not empty and holds no ${META_FILE}, so it is not a previous export`);
  }
}

async function runExport(io: CliIO, src: ExportSource, f: ExportFlags & { out: string }): Promise<void> {
  const t0 = performance.now();
  const progress = exportProgress(io);
  const interrupted = (signal: NodeJS.Signals): void => {
    progress.stop();
    removePartial(f.out);
    io.err(`error: export interrupted (${signal}); '${f.out}' was left as it was\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let result: Awaited<ReturnType<typeof exportModel>>;
  try {
    result = await exportModel(src, {
      outDir: f.out,
      chunkSize: f.chunkSize,
      logits: f.logits,
      paths: f.paths,
      tuning: { segsum: f.segsum, conv: f.conv, rmsnorm: f.rmsnorm, step: f.step },
      dtype: f.dtype,
      blockSize: f.blockSize,
      accuracyLevel: f.accuracyLevel as 0 | 1 | 2 | 3 | 4 | undefined,
      quantizeEmbedding: f.quantizeEmbedding,
      ssd: f.ssd,
      externalData: f.externalData,
      overwrite: f.force === true,
      onProgress: progress.onProgress,
      onWarning: (m) => {
        progress.stop();
        io.err(`warning: ${m}\n`);
      },
    });
  } finally {
    progress.stop();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
  const ms = performance.now() - t0;
  const rows: string[][] = [];
  let total = 0;
  for (const name of result.files) {
    const size = (await stat(join(result.outDir, name))).size;
    total += size;
    rows.push([name, formatBytes(size)]);
  }
  rows.push(['total', formatBytes(total)]);
  const c = result.meta.config;
  const opsets = Object.entries(result.meta.opsets)
    .map(([d, v]) => `${d === '' ? 'ai.onnx' : d} ${v}`)
    .join(', ');
  io.out(
    `exported ${result.meta.source} → ${result.outDir} in ${formatDuration(ms)}\n` +
      `${table(rows, { right: [1], indent: '  ' })}\n` +
      `  ${c.nLayer} layers · d_model ${c.dModel} · heads ${c.nHeads}×${c.headDim} · d_state ${c.dState} · groups ${c.nGroups} · ` +
      `vocab ${formatCount(c.vocabSize)} · chunk ${c.chunkSize} · opsets ${opsets}\n`,
  );
}

/**
 * Removes this process's unfinished export beside `out` (exportModel writes into
 * `.<name>.tmp-<pid>-<hex>` and swaps it in at the end, moving a previous model to `<tmp>.old`
 * meanwhile), so Ctrl-C leaves no debris behind; a previous model caught mid-swap is put back.
 */
function removePartial(out: string): void {
  const target = resolve(out);
  const parent = dirname(target);
  const prefix = `.${basename(target)}.tmp-${process.pid}-`;
  try {
    const entries = readdirSync(parent).filter((e) => e.startsWith(prefix));
    const old = entries.find((e) => e.endsWith('.old'));
    if (old !== undefined && !existsSync(target)) renameSync(join(parent, old), target);
    for (const e of entries) if (existsSync(join(parent, e))) rmSync(join(parent, e), { recursive: true, force: true });
  } catch {
    // best effort: the export itself never touched `out`
  }
}

function presetList(): string {
  const rows = listPresets().map((name) => {
    const p = loadPreset(name);
    const c = p.config;
    return [name, String(c.nLayer), String(c.dModel), `${c.nHeads}×${c.headDim}`, String(c.dState), formatCount(c.vocabSize), p.source];
  });
  return `${table([['preset', 'layers', 'd_model', 'heads', 'd_state', 'vocab', 'weights'], ...rows], { right: [1, 2, 4, 5] })}\n`;
}
