/**
 * exportModel: a checkpoint directory (HF safetensors or mamba_ssm pytorch_model.bin) or a preset
 * with seeded random weights → a model directory:
 *
 *   model.onnx, model.onnx.data (external data, when used), mamba2-onnx.json (ModelMeta),
 *   tokenizer files copied from the checkpoint when present (contents only: written 0644-style,
 *   whatever the checkpoint files' mode), or, for random weights, the project's byte-level
 *   tokenizer (byte-tokenizer.ts) when the vocabulary holds its 257 ids.
 *
 * Where: the output's parent is checked first (out-parent.ts: a directory, or missing under an
 * existing one, which are then created; on a filesystem for files; writable), before the checkpoint
 * is read. Everything is written into a temporary sibling directory, with an owner record beside it
 * (stale-temp.ts), and renamed into place at the end: a failed or killed export leaves the previous
 * output (or nothing) at `outDir`, and the next export removes what a killed one left.
 *
 * EOS: generation_config.json, then config.json, then the tokenizer (checkpoint-eos.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { saveModel } from '../graph/serialize.js';
import { openCheckpoint } from './checkpoint/index.js';
import type { TensorStore } from './checkpoint/types.js';
import { loadConfig } from './config.js';
import type { Mamba2Config } from '../package/config.js';
import { ioTable } from '../package/io.js';
import { buildMamba2Model } from './lm.js';
import { hybridOf, layerKinds } from '../package/layers.js';
import type { Tuning } from './blocks.js';
import { cleanStaleTemps, OWNER_SUFFIX, ownerRecord } from './stale-temp.js';
import { checkOutputParent, createParents, removeParents } from './out-parent.js';
import { withCheckpointEos } from './checkpoint-eos.js';
import { BYTE_TOKENIZER_SIZE, byteTokenizer } from './byte-tokenizer.js';
import { sequenceForm } from './forms.js';
import {
  DATA_FILE,
  META_FILE,
  MODEL_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  TOKENIZER_FILES,
  type ModelMeta,
  type SsdForm,
  type WeightDType,
} from '../package/meta.js';
import { loadPreset } from './presets.js';
import { randomWeights } from './random-weights.js';
import { checkWeights } from './weight-names.js';
import { checkBlockSize } from './quantize.js';
import { DEFAULT_BLOCK_SIZE, type WeightPlan } from './weights.js';

export const EXPORTER_VERSION = '0.1.0';

/**
 * Default SSD chunk size: the checkpoint's Q, capped at 128. The math does not depend on Q (docs/model.md
 * §2.7); Q = 128 was fastest at L = 2048 on CUDA and WebGPU and no slower on CPU (BENCHMARKS.md).
 */
export const DEFAULT_MAX_CHUNK = 128;

export type ExportSource = { checkpointDir: string } | { preset: string; randomWeights: true; seed?: number };

export interface ExportProgress {
  phase: 'read' | 'build' | 'write' | 'done';
  done: number;
  total: number;
  detail?: string;
}

export interface ExportOptions {
  outDir: string;
  /** Chunk size Q of the SSD (default: the config's, capped at DEFAULT_MAX_CHUNK). */
  chunkSize?: number;
  /** 'last': the graph returns logits of the last position only ([batch, 1, V]). Default 'all'. */
  logits?: 'all' | 'last';
  /** Graph-construction choices that keep the math, e.g. { segsum: 'diff' } (blocks.ts Tuning). */
  tuning?: Tuning;
  /** Which paths the graph holds (lm.ts BuildOptions.paths); default 'both' (If on sequence == 1). */
  paths?: 'both' | 'step' | 'sequence';
  ssd?: SsdForm;
  /**
   * Storage of embedding, in_proj, out_proj and lm_head (default 'fp32'): 'fp16' (matmuls in fp16),
   * 'int8' / 'int4' (weight-only MatMulNBits). Everything else stays float32, and so does the graph I/O.
   */
  dtype?: WeightDType;
  /** MatMulNBits block size along K for int8/int4 (power of two ≥ 16; default 32). */
  blockSize?: number;
  /** int8/int4: quantize the embedding too (dequantizing Gather; default true). */
  quantizeEmbedding?: boolean;
  /**
   * int8/int4: MatMulNBits `accuracy_level`. 0 (default, unset): activations stay float32 — exact
   * dequantization, the same numbers on every EP, but slow int8 on CPU (6.7 tok/s decode, 130m). 4:
   * the CPU EP quantizes activations to int8 per block — 65 tok/s, less exact (greedy agreement on
   * the tiny fixture 80 % instead of 97 %); GPU EPs ignore it.
   */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  externalData?: 'auto' | 'always' | 'never';
  /** Replace an existing output directory (it is swapped only once the new one is complete). */
  overwrite?: boolean;
  onProgress?: (p: ExportProgress) => void;
  /** Called with non-fatal findings (extra checkpoint tensors…): the CLI prints them. */
  onWarning?: (message: string) => void;
}

export type { QuantizationMeta } from '../package/meta.js';

export interface ExportResult {
  outDir: string;
  files: string[];
  meta: ModelMeta;
}

const DTYPES: readonly WeightDType[] = ['fp32', 'fp16', 'int8', 'int4'];

/** Validates dtype / blockSize and returns the weight plan. */
export function weightPlan(opts: Pick<ExportOptions, 'dtype' | 'blockSize' | 'quantizeEmbedding' | 'accuracyLevel'>): WeightPlan {
  const dtype = opts.dtype ?? 'fp32';
  if (!DTYPES.includes(dtype)) throw new RangeError(`dtype: expected one of ${DTYPES.join(', ')}, got '${String(dtype)}'`);
  const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  checkBlockSize(blockSize, 'blockSize');
  const accuracyLevel = opts.accuracyLevel ?? 0;
  if (![0, 1, 2, 3, 4].includes(accuracyLevel))
    throw new RangeError(`accuracyLevel: expected 0, 1, 2, 3 or 4, got ${String(accuracyLevel)}`);
  return { dtype, blockSize, quantizeEmbedding: opts.quantizeEmbedding ?? true, accuracyLevel };
}

interface Opened {
  config: Mamba2Config;
  store: TensorStore;
  source: string;
  tokenizerDir?: string;
  /** Tokenizer files to write (random weights): name → contents. */
  tokenizerFiles?: Record<string, string>;
}

/**
 * Random weights: the byte-level tokenizer (byte-tokenizer.ts), when the real vocabulary holds its
 * 257 ids (smaller toy vocabularies take token ids only), and its `<|endoftext|>` = 0 as the EOS
 * when the preset names none.
 */
function randomSource(config: Mamba2Config): Pick<Opened, 'config' | 'tokenizerFiles'> {
  if (config.realVocabSize < BYTE_TOKENIZER_SIZE) return { config };
  const tok = byteTokenizer();
  return {
    config: config.eosTokenId === undefined ? Object.freeze({ ...config, eosTokenId: 0 }) : config,
    tokenizerFiles: {
      [TOKENIZER_FILE]: `${JSON.stringify(tok.json)}\n`,
      [TOKENIZER_CONFIG_FILE]: `${JSON.stringify(tok.config, null, 2)}\n`,
    },
  };
}

async function openSource(src: ExportSource): Promise<Opened> {
  if ('checkpointDir' in src) {
    const dir = resolve(src.checkpointDir);
    if (!existsSync(dir) || !(await stat(dir)).isDirectory())
      throw new Error(`checkpoint: expected a directory, got '${src.checkpointDir}'`);
    const ck = await openCheckpoint(dir);
    try {
      const config = await withCheckpointEos(await loadConfig(dir, ck.format), dir);
      return { config, store: ck.store, source: basename(dir), tokenizerDir: dir };
    } catch (e) {
      await ck.store.close();
      throw e;
    }
  }
  const seed = src.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed: expected a non-negative integer, got ${seed}`);
  const preset = loadPreset(src.preset);
  return { ...randomSource(preset.config), store: randomWeights(preset.config, seed), source: `preset:${preset.name}@${seed}` };
}

function checkChunkSize(q: number | undefined): void {
  if (q !== undefined && (!Number.isSafeInteger(q) || q < 1 || q > 4096)) {
    throw new RangeError(`chunkSize: expected an integer in [1, 4096], got ${q}`);
  }
}

export async function exportModel(src: ExportSource, opts: ExportOptions): Promise<ExportResult> {
  checkChunkSize(opts.chunkSize);
  const ssd = opts.ssd ?? 'chunked';
  sequenceForm(ssd); // validates the name
  const plan = weightPlan(opts);
  const outDir = resolve(opts.outDir);
  const where = await checkOutputParent(opts.outDir, 'outDir'); // before anything is read or built
  await cleanStaleTemps(outDir, { onWarning: opts.onWarning }); // leftovers of killed exports (owners gone)
  await checkOutDir(src, outDir, opts);
  const progress = opts.onProgress ?? (() => {});
  progress({ phase: 'read', done: 0, total: 1 });
  const { config, store, source, tokenizerDir, tokenizerFiles } = await openSource(src);
  const tmp = join(dirname(outDir), `.${basename(outDir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const owner = `${tmp}${OWNER_SUFFIX}`;
  let madeParents: string[] = [];
  try {
    const check = checkWeights(config, store, source);
    if (check.unexpected.length > 0)
      opts.onWarning?.(
        `ignoring ${check.unexpected.length} checkpoint tensor(s) the model does not use: ${check.unexpected.slice(0, 5).join(', ')}${check.unexpected.length > 5 ? ', …' : ''}`,
      );
    progress({ phase: 'build', done: 0, total: 1 });
    const chunkSize = opts.chunkSize ?? Math.min(config.chunkSize, DEFAULT_MAX_CHUNK);
    const ir = buildMamba2Model(config, store, {
      ssd,
      logits: opts.logits,
      paths: opts.paths,
      tuning: opts.tuning,
      chunkSize,
      weights: plan,
      producerVersion: EXPORTER_VERSION,
      docString: `Mamba-2 from ${source}`,
    });
    const used: Mamba2Config = { ...config, chunkSize };
    madeParents = await createParents(where);
    // the owner record first (wx: never over another's), then the directory it speaks for
    await writeFile(owner, `${JSON.stringify(ownerRecord())}\n`, { flag: 'wx' });
    await mkdir(tmp);
    const saved = await saveModel(ir, tmp, {
      externalData: opts.externalData ?? 'auto',
      onTensor: (done, total, name) => progress({ phase: 'write', done, total, detail: name }),
    });
    const files = saved.files.map((f) => basename(f));
    const tokenizer: string[] = [];
    if (tokenizerDir) {
      for (const f of TOKENIZER_FILES) {
        if (existsSync(join(tokenizerDir, f))) {
          // contents, not mode: a read-only checkpoint file must not make a read-only export
          await writeFile(join(tmp, f), await readFile(join(tokenizerDir, f)));
          tokenizer.push(f);
        }
      }
    }
    for (const [f, text] of Object.entries(tokenizerFiles ?? {})) {
      await writeFile(join(tmp, f), text);
      tokenizer.push(f);
    }
    const meta: ModelMeta = {
      format: 'mamba2-onnx',
      formatVersion: 1,
      source,
      config: used,
      io: ioTable(used, { lastLogits: opts.logits === 'last', stepOnly: opts.paths === 'step' }),
      ssdForm: ssd,
      weightDType: plan.dtype,
      singleStep: opts.paths === 'step' ? 'only' : opts.paths === 'sequence' ? 'none' : 'if',
      files: { model: MODEL_FILE, data: files.includes(DATA_FILE) ? DATA_FILE : undefined, tokenizer },
      opsets: ir.opsetImports,
      exporterVersion: EXPORTER_VERSION,
      ...(plan.dtype === 'int8' || plan.dtype === 'int4'
        ? {
            quantization: {
              method: 'MatMulNBits',
              bits: plan.dtype === 'int8' ? 8 : 4,
              blockSize: plan.blockSize,
              accuracyLevel: plan.accuracyLevel ?? 0,
              symmetric: false,
              quantized: [
                ...(plan.quantizeEmbedding ? ['embedding' as const] : []),
                'in_proj',
                'out_proj',
                'lm_head',
                ...(layerKinds(config).includes('attention') ? ['attention' as const] : []),
                ...(hybridOf(config)?.mlp ? ['mlp' as const] : []),
                ...(hybridOf(config)?.moe ? ['moe' as const] : []),
              ],
            },
          }
        : {}),
    };
    // JSON cannot hold Infinity: dtLimit's upper bound is written as null and read back as Infinity
    await writeFile(join(tmp, META_FILE), `${JSON.stringify(meta, (_k, v: unknown) => (v === Infinity ? null : v), 2)}\n`);
    await swapInto(tmp, outDir);
    await rm(owner, { force: true });
    progress({ phase: 'done', done: 1, total: 1 });
    return { outDir, files: [...files, ...tokenizer, META_FILE], meta };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // a failure inside the swap: put the previous output back (or finish removing it)
    const old = `${tmp}.old`;
    if (existsSync(old)) {
      if (!existsSync(outDir)) await rename(old, outDir).catch(() => undefined);
      if (existsSync(outDir)) await rm(old, { recursive: true, force: true });
    }
    // an `.old` that could not be put back keeps its record: the next export restores it
    if (!existsSync(old)) await rm(owner, { force: true });
    await removeParents(madeParents);
    throw e;
  } finally {
    await store.close();
  }
}

/**
 * The output may replace only a previous model directory: never the checkpoint (or a folder that
 * holds it), never a non-empty folder without a mamba2-onnx.json, never a file.
 */
async function checkOutDir(src: ExportSource, outDir: string, opts: ExportOptions): Promise<void> {
  if ('checkpointDir' in src) {
    const ck = resolve(src.checkpointDir);
    if (ck === outDir || ck.startsWith(`${outDir}/`)) throw new Error(`out: '${opts.outDir}' is or contains the checkpoint directory`);
  }
  if (!existsSync(outDir)) return;
  if (!(await stat(outDir)).isDirectory()) throw new Error(`out: '${opts.outDir}' exists and is not a directory`);
  if ((await readdir(outDir)).length === 0) return;
  if (!opts.overwrite) throw new Error(`out: '${opts.outDir}' exists and is not empty (pass overwrite / --force to replace it)`);
  if (!existsSync(join(outDir, META_FILE)))
    throw new Error(`out: '${opts.outDir}' is not a model directory (no ${META_FILE}): refusing to replace it`);
}

/** Moves the finished `tmp` to `outDir`, replacing a previous output only after the new one is complete. */
async function swapInto(tmp: string, outDir: string): Promise<void> {
  if (!existsSync(outDir)) {
    await rename(tmp, outDir);
    return;
  }
  const old = `${tmp}.old`;
  await rename(outDir, old);
  await rename(tmp, outDir);
  await rm(old, { recursive: true, force: true });
}
