/**
 * What the browser tests serve: the `tiny` preset with random weights, exported twice (fp32 and
 * fp16, both with external data), and a byte-level tokenizer whose 256 ids are exactly the tiny
 * model's vocabulary (id = byte), so that every id the model picks decodes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportModel } from '../../src/export/index.js';
import { Mamba2Model } from '../../src/runtime/model.js';
import { byteTokenizerJson } from '../helpers/tiny-tokenizers.js';

export interface TinyPackage {
  /** The directory served as /models/. */
  root: string;
  fp32: string;
  fp16: string;
}

/** Export tiny (seed 1) as fp32 and fp16 under `root`, each with model.onnx.data and tokenizer.json. */
export async function makeTinyPackage(root: string): Promise<TinyPackage> {
  const src = { preset: 'tiny', randomWeights: true as const, seed: 1 };
  const fp32 = join(root, 'tiny');
  const fp16 = join(root, 'tiny-fp16');
  await exportModel(src, { outDir: fp32, externalData: 'always' });
  await exportModel(src, { outDir: fp16, externalData: 'always', dtype: 'fp16' });
  const tok = `${JSON.stringify(byteTokenizerJson())}\n`;
  for (const dir of [fp32, fp16]) writeFileSync(join(dir, 'tokenizer.json'), tok);
  return { root, fp32, fp16 };
}

/** Greedy ids of the Node runtime (onnxruntime-node, cpu) for `prompt`: the reference. */
export async function nodeGreedy(dir: string, prompt: string, maxNewTokens: number): Promise<{ ids: number[]; text: string }> {
  const m = await Mamba2Model.load(dir, { ep: 'cpu' });
  try {
    const r = await m.generate(prompt, { maxNewTokens, temperature: 0 });
    return { ids: r.outputIds, text: r.text };
  } finally {
    await m.release();
  }
}
