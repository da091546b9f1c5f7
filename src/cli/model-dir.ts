/**
 * Finds the files of an exported model from a CLI argument (a model directory or a model.onnx path)
 * and reads its `mamba2-onnx.json`, checking the fields the CLI relies on (the file is input from
 * disk: it may be hand-edited, truncated or from another tool).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { META_FILE, MODEL_FILE, type ModelMeta } from '../export/model-meta.js';

export interface ModelLocation {
  /** The directory holding the model. */
  dir: string;
  /** The .onnx file. */
  modelPath: string;
  /** mamba2-onnx.json when present beside the model. */
  metaPath?: string;
}

const META_LIMIT = 16 * 2 ** 20;

async function kind(path: string): Promise<'file' | 'dir' | 'other' | 'missing'> {
  try {
    const s = await stat(path);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return 'missing';
    throw e;
  }
}

/** `arg` is a model directory (with model.onnx) or an .onnx file. `what` names the argument in errors. */
export async function locateModel(arg: string, what: string): Promise<ModelLocation> {
  const path = resolve(arg);
  const k = await kind(path);
  let dir: string;
  let modelPath: string;
  if (k === 'dir') {
    dir = path;
    modelPath = join(dir, MODEL_FILE);
    if ((await kind(modelPath)) !== 'file') {
      throw new Error(`${what}: expected a model directory holding ${MODEL_FILE}, got '${arg}' (no ${MODEL_FILE} in it)`);
    }
  } else if (k === 'file') {
    if (!basename(path).endsWith('.onnx')) throw new Error(`${what}: expected a model directory or an .onnx file, got '${arg}'`);
    dir = dirname(path);
    modelPath = path;
  } else {
    throw new Error(`${what}: expected a model directory or an .onnx file, got '${arg}' (${k === 'missing' ? 'not found' : 'not a file or directory'})`);
  }
  const metaPath = join(dir, META_FILE);
  return (await kind(metaPath)) === 'file' ? { dir, modelPath, metaPath } : { dir, modelPath };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads and checks mamba2-onnx.json. Infinity, which JSON cannot hold, is written as null in dtLimit. */
export async function readModelMeta(path: string): Promise<ModelMeta> {
  const size = (await stat(path)).size;
  if (size > META_LIMIT) throw new RangeError(`${path}: expected a small JSON file (≤ 16 MiB), got ${size} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (field: string, expected: string, got: unknown): Error =>
    new Error(`${path}: ${field}: expected ${expected}, got ${JSON.stringify(got)?.slice(0, 80) ?? String(got)}`);
  if (!isObj(raw)) throw bad('(top level)', 'an object', raw);
  if (raw.format !== 'mamba2-onnx') throw bad('format', '"mamba2-onnx"', raw.format);
  if (raw.formatVersion !== 1) throw bad('formatVersion', '1', raw.formatVersion);
  const c = raw.config;
  if (!isObj(c)) throw bad('config', 'an object', c);
  for (const k of ['nLayer', 'vocabSize', 'realVocabSize', 'dState', 'dConv', 'nHeads', 'headDim', 'convDim', 'chunkSize', 'dModel']) {
    if (!isCount(c[k])) throw bad(`config.${k}`, 'a non-negative integer', c[k]);
  }
  for (const k of ['eosTokenId', 'bosTokenId', 'padTokenId']) {
    if (c[k] !== undefined && c[k] !== null && !isCount(c[k])) throw bad(`config.${k}`, 'a token id or absent', c[k]);
  }
  if (Array.isArray(c.dtLimit) && c.dtLimit[1] === null) c.dtLimit = [c.dtLimit[0], Infinity];
  const io = raw.io;
  if (!isObj(io)) throw bad('io', 'an object { inputs, outputs }', io);
  for (const side of ['inputs', 'outputs'] as const) {
    const list = io[side];
    if (!Array.isArray(list)) throw bad(`io.${side}`, 'an array', list);
    list.forEach((e: unknown, i) => {
      if (!isObj(e) || typeof e.name !== 'string' || typeof e.dtype !== 'string' || !Array.isArray(e.shape)) {
        throw bad(`io.${side}[${i}]`, '{ name, dtype, shape }', e);
      }
      if (!e.shape.every((d) => isCount(d) || typeof d === 'string')) throw bad(`io.${side}[${i}].shape`, 'integers and dim names', e.shape);
    });
  }
  return raw as unknown as ModelMeta;
}
