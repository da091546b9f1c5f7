/**
 * `mamba2-onnx generate <model-dir> --prompt "text" | --ids 1,2,3 [--max-new-tokens N] [sampling]
 *  [--ep cpu|webgpu|cuda] [--backend node|capi] [--json]`
 *
 * Text (or, without a tokenizer, token ids) streams to stdout as it is generated; a final line
 * reports prefill and decode tokens/s. `--json` prints one object instead.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import {
  BACKEND_NAMES,
  EP_NAMES,
  Mamba2Model,
  preferredBackend,
  type BackendName,
  type EpName,
  type GenerateOptions,
  type MemoryPolicy,
  type GenerateResult,
} from '../runtime/index.js';
import { type CliIO, UsageError } from './errors.js';
import { floatFlag, intFlag, listFlag } from './flags.js';
import { locateModel } from './model-dir.js';

interface GenerateFlags {
  prompt?: string;
  ids?: number[];
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed?: number;
  stop: string[];
  stopIds: number[];
  prefillWindow?: number;
  ep: EpName[];
  memory: MemoryPolicy;
  /** ONNX Runtime binding (default 'node'); 'capi' falls back to 'node' with a note. */
  backend?: BackendName;
  json?: boolean;
}

/** `1,2,3` → [1,2,3] (non-negative integers). */
function idList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw new InvalidArgumentError('expected comma-separated non-negative integers, e.g. 1,2,3');
  return parts.map(Number);
}

const collect = (value: string, prev: string[]): string[] => [...prev, value];

function renderStats(r: GenerateResult, ep: EpName): string {
  const rate = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  return `[${ep}] prefill ${r.prefillTokens} tok at ${rate(r.prefillTokensPerSecond)} tok/s, decode ${r.decodeTokens} tok at ${rate(r.decodeTokensPerSecond)} tok/s (${r.finishReason})`;
}

export async function runGenerate(modelArg: string, flags: GenerateFlags, io: CliIO): Promise<GenerateResult> {
  if ((flags.prompt === undefined) === (flags.ids === undefined)) throw new UsageError('give exactly one of --prompt or --ids', 'generate');
  const loc = await locateModel(modelArg, 'model-dir');
  const { backend, fallbackReason } = await preferredBackend(flags.backend ?? 'node');
  if (fallbackReason) io.err(`note: ${fallbackReason}\n`);
  const model = await Mamba2Model.load(loc.dir, { ep: flags.ep, memory: flags.memory, backend });
  try {
    for (const f of model.fallbacks) io.err(`note: ep ${f.ep} not used (${f.reason}); running on ${model.ep}\n`);
    const prompt: string | number[] = flags.prompt ?? flags.ids!;
    if (typeof prompt === 'string' && !model.tokenizer) {
      throw new UsageError(`${loc.dir} has no tokenizer.json: pass token ids with --ids instead of --prompt`, 'generate');
    }
    const opts: GenerateOptions = {
      maxNewTokens: flags.maxNewTokens,
      temperature: flags.temperature,
      topK: flags.topK,
      topP: flags.topP,
      repetitionPenalty: flags.repetitionPenalty,
      seed: flags.seed,
      stopStrings: flags.stop,
      stopTokenIds: flags.stopIds,
      prefillWindow: flags.prefillWindow,
    };
    const stream = model.stream(prompt, opts);
    const text = model.tokenizer !== undefined;
    let first = true;
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        const r = next.value;
        if (flags.json) {
          io.out(
            `${JSON.stringify({ output_ids: r.outputIds, text: text ? r.text : null, finish_reason: r.finishReason, prefill_tok_s: r.prefillTokensPerSecond, decode_tok_s: r.decodeTokensPerSecond, ep: model.ep, seed: r.seed })}\n`,
          );
        } else {
          io.out('\n');
          io.out(`${renderStats(r, model.ep)}\n`);
        }
        return r;
      }
      if (flags.json) continue;
      const chunk = next.value;
      io.out(text ? chunk.text : `${first ? '' : ' '}${chunk.tokenId}`);
      first = false;
    }
  } finally {
    await model.release();
  }
}

export function registerGenerate(program: Command, io: CliIO): void {
  program
    .command('generate')
    .description('generate text (or token ids) from an exported model, streamed to stdout')
    .argument('<model-dir>', 'exported model directory')
    .option('-p, --prompt <text>', 'prompt text (needs tokenizer.json in the model directory)')
    .option('--ids <list>', 'prompt as token ids, e.g. 1,2,3', idList)
    .option('-n, --max-new-tokens <N>', 'new tokens at most', intFlag(0, 1_000_000), 64)
    .option('--temperature <T>', '0 = greedy', floatFlag(0), 0)
    .option('--top-k <K>', 'keep the K most likely tokens (0 = off)', intFlag(0), 0)
    .option('--top-p <P>', 'nucleus threshold in (0, 1] (1 = off)', floatFlag(Number.MIN_VALUE, 1), 1)
    .option('--repetition-penalty <R>', '> 1 discourages repeats', floatFlag(Number.MIN_VALUE), 1)
    .option('--seed <S>', 'sampling seed (same seed, same tokens)', intFlag(0, 2 ** 32 - 1))
    .option('--stop <text>', 'stop string (repeatable)', collect, [] as string[])
    .option('--stop-ids <list>', 'stop token ids, e.g. 0,2', idList, [] as number[])
    .option('--prefill-window <N>', 'prefill long prompts in windows of N tokens', intFlag(1))
    .option('--ep <list>', `execution providers to try in order (${EP_NAMES.join(', ')})`, listFlag(EP_NAMES), ['cpu'] as EpName[])
    .addOption(
      program
        .createOption(
          '--memory <policy>',
          "CPU host memory: 'fast' (prepacked GEMM weights, activation arena) or 'lean' (weights read in place from the mapped file, no arena: ≈ weights + a fixed overhead, slower prefill)",
        )
        .choices(['fast', 'lean'])
        .default('fast'),
    )
    .addOption(
      program
        .createOption(
          '--backend <name>',
          "ONNX Runtime binding: 'node' (onnxruntime-node) or 'capi' (its C API through koffi; falls back to node with a note)",
        )
        .choices(BACKEND_NAMES)
        .default('node'),
    )
    .option('--json', 'print one JSON object: output_ids, text, prefill_tok_s, decode_tok_s')
    .action(async (modelDir: string, flags: GenerateFlags) => {
      await runGenerate(modelDir, flags, io);
    });
}
