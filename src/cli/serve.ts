/**
 * `mamba2-onnx serve <model-dir> [--host 127.0.0.1] [--port 8000] [--api-key KEY] …`
 *
 * An OpenAI-compatible HTTP server (src/server/). Listens first (503 while the model loads), then
 * serves until SIGTERM or SIGINT: new requests are refused, in-flight ones get `--shutdown-grace`
 * seconds to finish, the rest are cancelled, and the command exits 0.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { EP_NAMES, Mamba2Model, type EpName, type MemoryPolicy } from '../runtime/index.js';
import { startServer } from '../server/index.js';
import { UsageError, type CliIO } from './errors.js';
import { intFlag, listFlag } from './flags.js';
import { locateModel } from './model-dir.js';

interface ServeFlags {
  host: string;
  port: number;
  apiKey?: string;
  modelName?: string;
  ep: EpName[];
  threads?: number;
  memory: MemoryPolicy;
  maxBatch: number;
  maxQueue: number;
  maxPromptTokens: number;
  maxTokens: number;
  prefillWindow: number;
  stepPrefill: number;
  cacheMb: number;
  bodyLimitKb: number;
  requestTimeout: number;
  shutdownGrace: number;
}

/** Env variable read when --api-key is not given (keeps the key out of `ps`). */
export const API_KEY_ENV = 'MAMBA2_ONNX_API_KEY';

/** Shorter keys are refused (what --help says). */
const MIN_API_KEY_LENGTH = 8;

export function registerServe(program: Command, io: CliIO): void {
  program
    .command('serve')
    .description(
      'serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/models, /health, /metrics) with batched decoding and a prefix-state cache',
    )
    .argument('<model-dir>', 'model directory written by `mamba2-onnx export`')
    .option('--host <addr>', 'interface to bind (0.0.0.0 exposes the server to the network)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 picks a free one)', intFlag(0, 65535), 8000)
    .option(
      '--api-key <key>',
      `require Authorization: Bearer <key>, at least ${MIN_API_KEY_LENGTH} characters (default: $${API_KEY_ENV} when set)`,
    )
    .option('--model-name <id>', 'model id clients send and see in /v1/models (default: the directory name)')
    .option('--ep <list>', `execution providers to try in order (${EP_NAMES.join(', ')})`, listFlag(EP_NAMES), ['cpu'] as EpName[])
    .option('--threads <n>', 'CPU EP intra-op threads (default: ORT picks)', intFlag(1, 1024))
    .addOption(
      program
        .createOption(
          '--memory <policy>',
          "CPU host memory: 'lean' (weights read in place from the mapped file, no arena: RSS ≈ weights + a fixed overhead + states) or 'fast' (prepacked GEMM weights, a second copy, and an activation arena)",
        )
        .choices(['fast', 'lean'])
        .default('lean'),
    )
    .option('--max-batch <n>', 'sequences decoded together (slots)', intFlag(1, 1024), 32)
    .option('--max-queue <n>', 'requests waiting for a slot before 429', intFlag(0, 1_000_000), 64)
    .option('--max-prompt-tokens <n>', 'longest prompt accepted', intFlag(1), 8192)
    .option('--max-tokens <n>', 'largest max_tokens accepted', intFlag(1), 4096)
    .option('--prefill-window <n>', 'prompt tokens per prefill call (long prompts are prefilled between decode steps)', intFlag(1), 256)
    .option(
      '--step-prefill <n>',
      'prompt remainders of at most n tokens are fed through the decode batch instead of a prefill call (0 = never)',
      intFlag(0),
      8,
    )
    .option('--cache-mb <n>', 'prefix-state cache size in MiB (0 = off)', intFlag(0), 512)
    .option('--body-limit-kb <n>', 'largest request body in KiB', intFlag(1, 2 ** 21), 1024)
    .option('--request-timeout <s>', 'seconds to receive a whole request (slow clients get 408)', intFlag(1, 3600), 30)
    .option('--shutdown-grace <s>', 'seconds in-flight requests may run after SIGTERM before they are cancelled', intFlag(0, 3600), 30)
    .addHelpText(
      'after',
      `
Sampling: requests without "temperature" are sampled at temperature 1 (OpenAI's default),
unlike \`mamba2-onnx generate\`, which is greedy; send "temperature": 0 for greedy output.`,
    )
    .action(async (modelArg: string, flags: ServeFlags) => {
      const loc = await locateModel(modelArg, 'model-dir');
      const apiKey = flags.apiKey ?? (process.env[API_KEY_ENV] || undefined);
      if (apiKey !== undefined && apiKey.length < MIN_API_KEY_LENGTH)
        throw new UsageError(`--api-key: expected at least ${MIN_API_KEY_LENGTH} characters`, 'serve');
      if (flags.host !== '127.0.0.1' && flags.host !== 'localhost' && flags.host !== '::1' && apiKey === undefined) {
        io.err(`warning: --host ${flags.host} serves beyond this machine without an API key (set --api-key or $${API_KEY_ENV})\n`);
      }
      const modelName = flags.modelName ?? (basename(resolve(loc.dir)).replace(/[^\w.:/@+-]/g, '_') || 'mamba2');
      const server = await startServer(
        () =>
          Mamba2Model.load(loc.dir, {
            ep: flags.ep,
            deviceState: false,
            memory: flags.memory,
            ...(flags.threads !== undefined ? { intraOpNumThreads: flags.threads } : {}),
          }),
        {
          host: flags.host,
          port: flags.port,
          apiKey,
          modelName,
          maxBatch: flags.maxBatch,
          maxQueue: flags.maxQueue,
          maxPromptTokens: flags.maxPromptTokens,
          maxTokens: flags.maxTokens,
          defaultMaxTokens: Math.min(16, flags.maxTokens),
          prefillWindow: flags.prefillWindow,
          stepPrefillMax: flags.stepPrefill,
          cacheBytes: flags.cacheMb * 2 ** 20,
          bodyLimit: flags.bodyLimitKb * 1024,
          requestTimeoutMs: flags.requestTimeout * 1000,
          shutdownGraceMs: flags.shutdownGrace * 1000,
          log: (level, message) => io.err(`${level === 'info' ? '' : `${level}: `}${message}\n`),
        },
      );
      io.err(`listening on ${server.url} (model '${modelName}' from ${loc.dir}; loading…)\n`);
      let signalled: NodeJS.Signals | undefined;
      let onSignal: (sig: NodeJS.Signals) => void = () => {};
      const stopped = new Promise<void>((done) => {
        onSignal = (sig) => {
          if (signalled) return;
          signalled = sig;
          io.err(`${sig}: shutting down (in-flight requests get up to ${flags.shutdownGrace} s)\n`);
          void server.shutdown().then(done, done);
        };
      });
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        await server.ready;
        await stopped;
      } catch (e) {
        await server.shutdown(0);
        throw e;
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      io.err('stopped\n');
    });
}
