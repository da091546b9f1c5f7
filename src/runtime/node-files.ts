/**
 * Reading an exported model directory from disk (Node only): mamba2-onnx.json, the model path
 * (ORT memory-maps model.onnx.data itself when given a path) and the tokenizer when present.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { META_FILE } from '../package/meta.js';
import type { ModelMeta } from '../package/meta.js';
import { describe } from './backend.js';
import { parseModelMeta } from '../package/parse-meta.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '../package/meta.js';
import { TextTokenizer } from './tokenizer.js';

export interface ModelDir {
  dir: string;
  modelPath: string;
  meta: ModelMeta;
  tokenizer: TextTokenizer | undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Load the tokenizer of a model directory, or undefined when it has no tokenizer.json. */
export async function readTokenizer(dir: string): Promise<TextTokenizer | undefined> {
  const tj = join(dir, TOKENIZER_FILE);
  if (!(await isFile(tj))) return undefined;
  const tc = join(dir, TOKENIZER_CONFIG_FILE);
  const config = (await isFile(tc)) ? await readJson(tc) : {};
  return TextTokenizer.fromJSON(await readJson(tj), config, tj);
}

/** Read and check everything in `dir` that a runtime needs, before any session is created. */
export async function readModelDir(dir: unknown): Promise<ModelDir> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`dir: expected a model directory path, got ${describe(dir)}`);
  const abs = resolve(dir);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(abs);
  } catch {
    throw new Error(`model directory ${abs} does not exist (expected the output directory of \`mamba2-onnx export\`)`);
  }
  if (!st.isDirectory()) throw new Error(`model directory ${abs} is not a directory`);
  const metaPath = join(abs, META_FILE);
  if (!(await isFile(metaPath))) {
    throw new Error(`${abs} has no ${META_FILE}: expected a directory written by \`mamba2-onnx export\` (model.onnx + ${META_FILE})`);
  }
  const meta = parseModelMeta(await readFile(metaPath, 'utf8'), metaPath);
  const modelPath = join(abs, meta.files.model);
  if (!(await isFile(modelPath))) throw new Error(`${metaPath} names the model file ${meta.files.model}, but ${modelPath} does not exist`);
  if (meta.files.data && !(await isFile(join(abs, meta.files.data)))) {
    throw new Error(`${metaPath} names the weights file ${meta.files.data}, but ${join(abs, meta.files.data)} does not exist`);
  }
  return { dir: abs, modelPath, meta, tokenizer: await readTokenizer(abs) };
}
