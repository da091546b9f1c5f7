/**
 * `npm start [-- [checkpoint-dir] [--preset NAME|FILE] [--prompt TEXT] [--max-new-tokens N]]`: the
 * main job on an embedded default. Exports the mamba2-130m preset with seeded random weights (or the
 * given checkpoint, or another preset) to out/, then generates from it and prints tokens/s. An
 * existing export in out/ is reused.
 *
 * Random-weight exports ship the project's byte-level tokenizer (src/export/byte-tokenizer.ts), so
 * `--prompt` works out of the box; the output of random weights is random bytes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { main, processIO } from '../src/cli/main.js';

const io = processIO();
const program = new Command('npm start')
  .description('export a model (default: the mamba2-130m preset, random weights) to out/ and generate from it')
  .argument('[checkpoint]', 'an HF or mamba_ssm checkpoint directory instead of a preset')
  .option('--preset <name|file>', 'preset to export with random weights', 'mamba2-130m')
  .option('--prompt <text>', 'text prompt', 'Mamba-2 is')
  .option('--max-new-tokens <n>', 'tokens to generate', '32')
  .exitOverride()
  .configureOutput({ writeOut: (s) => io.out(s), writeErr: () => {} });

let ckpt: string | undefined;
let opts: { preset: string; prompt: string; maxNewTokens: string };
try {
  program.parse(process.argv);
  ckpt = program.args[0];
  opts = program.opts();
} catch (e) {
  if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) process.exit(0);
  io.err(`error: ${(e as Error).message.replace(/^error: /, '')}\n`);
  process.exit(2);
}
if (ckpt !== undefined && program.getOptionValueSource('preset') === 'cli') {
  io.err(`error: expected a checkpoint directory or --preset, got both ('${ckpt}' and --preset ${opts.preset})\n`);
  process.exit(2);
}

const presetName = basename(opts.preset).replace(/\.json$/, '');
const out = resolve('out', ckpt ? basename(resolve(ckpt)) : `${presetName}-random`);
const run = async (argv: string[]): Promise<void> => {
  const code = await main(argv, io);
  if (code !== 0) process.exit(code);
};

if (!existsSync(join(out, 'mamba2-onnx.json'))) {
  await run(ckpt ? ['export', ckpt, '--out', out] : ['export', '--preset', opts.preset, '--random-weights', '--seed', '1', '--out', out]);
} else {
  io.err(`using the existing export in ${out}\n`);
}
const hasTokenizer = existsSync(join(out, 'tokenizer.json'));
const vocab = (JSON.parse(readFileSync(join(out, 'mamba2-onnx.json'), 'utf8')) as { config: { realVocabSize: number } }).config
  .realVocabSize;
const ids = [510, 12, 1234, 15, 253].map((i) => i % vocab).join(',');
const n = opts.maxNewTokens;
io.err(
  hasTokenizer
    ? `generating ${n} tokens from a text prompt:\n`
    : `generating ${n} tokens (no tokenizer in this model: prompt and output are token ids):\n`,
);
await run(['generate', out, ...(hasTokenizer ? ['--prompt', opts.prompt] : ['--ids', ids]), '--max-new-tokens', n]);
