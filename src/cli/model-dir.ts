/**
 * Finds the files of an exported model from a CLI argument (a model directory or a model.onnx path)
 * and reads its `mamba2-onnx.json` (checked: it may be hand-edited, truncated or from another tool).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { META_FILE, MODEL_FILE, type ModelMeta } from '../package/meta.js';
import { parseModelMeta } from '../package/parse-meta.js';

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
    throw new Error(
      `${what}: expected a model directory or an .onnx file, got '${arg}' (${k === 'missing' ? 'not found' : 'not a file or directory'})`,
    );
  }
  const metaPath = join(dir, META_FILE);
  return (await kind(metaPath)) === 'file' ? { dir, modelPath, metaPath } : { dir, modelPath };
}

/** Reads and checks mamba2-onnx.json (the runtime's parser: one definition of what is valid). */
export async function readModelMeta(path: string): Promise<ModelMeta> {
  const size = (await stat(path)).size;
  if (size > META_LIMIT) throw new RangeError(`${path}: expected a small JSON file (≤ 16 MiB), got ${size} bytes`);
  return parseModelMeta(await readFile(path, 'utf8'), path);
}
