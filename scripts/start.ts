/**
 * `npm start [-- <checkpoint-dir>]`: the main job on an embedded default. Exports the mamba2-130m
 * preset with seeded random weights (or the given checkpoint) to out/, then generates from it and
 * prints tokens/s. An existing export in out/ is reused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { main, processIO } from '../src/cli/main.js';

const io = processIO();
const ckpt = process.argv[2];
const out = resolve('out', ckpt ? basename(resolve(ckpt)) : 'mamba2-130m-random');
const run = async (argv: string[]) => {
  const code = await main(argv, io);
  if (code !== 0) process.exit(code);
};

if (!existsSync(join(out, 'mamba2-onnx.json'))) {
  await run(ckpt ? ['export', ckpt, '--out', out] : ['export', '--preset', 'mamba2-130m', '--random-weights', '--seed', '1', '--out', out]);
} else {
  io.err(`using the existing export in ${out}\n`);
}
const hasTokenizer = existsSync(join(out, 'tokenizer.json'));
const vocab = (JSON.parse(readFileSync(join(out, 'mamba2-onnx.json'), 'utf8')) as { config: { realVocabSize: number } }).config.realVocabSize;
const ids = [510, 12, 1234, 15, 253].map((i) => i % vocab).join(',');
io.err(hasTokenizer ? 'generating 32 tokens from a text prompt:\n' : 'generating 32 tokens (no tokenizer in this model: prompt and output are token ids):\n');
await run(['generate', out, ...(hasTokenizer ? ['--prompt', 'Mamba-2 is'] : ['--ids', ids]), '--max-new-tokens', '32']);
