/**
 * What the browser tests serve: the `tiny` preset with random weights, exported twice (fp32 and
 * fp16, both with external data), and a byte-level tokenizer whose 256 ids are exactly the tiny
 * model's vocabulary (id = byte), so that every id the model picks decodes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportModel } from '../../src/export/index.js';
import { Mamba2Model } from '../../src/runtime/model.js';

/** GPT-2's bytes_to_unicode: the printable stand-in character of every byte. */
function byteChars(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = [];
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

/** tokenizer.json of a byte-level BPE without merges: token id = byte value. */
export function byteTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => (vocab[c] = b));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

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
