/**
 * The `mamba2-onnx` program: global flags, one registrar per command, and the error policy
 * (errors.ts). Each command lives in its own file and registers itself:
 *
 *   export   export.ts     inspect  inspect.ts     verify   verify.ts
 *
 * To add a command (`generate`, `serve`, `bench`): write `src/cli/<name>.ts` exporting
 * `register<Name>(program, io)`, create the subcommand with `program.command(...)` (so it inherits
 * the error handling below), and add it to COMMANDS. Commands print results with `io.out`,
 * progress and warnings with `io.err`, and throw to fail; library code never prints.
 */
import { Command, CommanderError } from 'commander';
import { EXPORTER_VERSION } from '../export/index.js';
import { EXIT_OK, exitCodeFor, formatError, UsageError, type CliIO } from './errors.js';
import { registerExport } from './export.js';
import { registerInspect } from './inspect.js';
import { registerServe } from './serve.js';
import { registerVerify } from './verify.js';
import { registerGenerate } from './generate.js';
import { registerBench } from './bench.js';

export type Registrar = (program: Command, io: CliIO) => void;

export const COMMANDS: readonly Registrar[] = [
  registerExport,
  registerInspect,
  registerVerify,
  registerGenerate,
  registerBench,
  registerServe,
];

export function createProgram(io: CliIO, commands: readonly Registrar[] = COMMANDS): Command {
  const program = new Command('mamba2-onnx')
    .description('Export Mamba-2 language models to ONNX (chunked SSD dual form) and run them with ONNX Runtime')
    .version(EXPORTER_VERSION, '-V, --version')
    .option('--verbose', 'print stack traces with errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      // commander's own parse errors are printed by main() as one line, like every other error
      outputError: () => {},
    });
  for (const register of commands) register(program, io);
  return program;
}

/** `--verbose` anywhere before `--` (also when parsing failed before commander saw it). */
const wantsVerbose = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--verbose');
};

/** Runs the CLI on `argv` (without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO, commands: readonly Registrar[] = COMMANDS): Promise<number> {
  let code = EXIT_OK;
  const withCode: CliIO = {
    out: io.out,
    err: io.err,
    errIsTTY: io.errIsTTY,
    setExitCode: (c) => {
      code = c;
      io.setExitCode(c);
    },
  };
  const program = createProgram(withCode, commands);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    const exit = exitCodeFor(e);
    if (e instanceof CommanderError) {
      // help or version shown (exit 0), or help shown because no command was given
      if (exit === EXIT_OK || e.code === 'commander.help') return exit;
      const sub = argv.find((a) => program.commands.some((c) => c.name() === a));
      io.err(formatError(new UsageError(e.message, sub), wantsVerbose(argv)));
      return exit;
    }
    io.err(formatError(e, wantsVerbose(argv)));
    return exit;
  }
}

/** Streams whose reader went away (`… | head -1`: EPIPE) or that failed otherwise. */
const broken = new WeakSet<NodeJS.WriteStream>();
const guarded = new WeakSet<NodeJS.WriteStream>();

/**
 * An 'error' listener on `stream` (once per stream): a closed pipe must not kill the command as an
 * uncaught exception, half-way through an export. Later writes to it are dropped; the command goes
 * on and its exit code says how the work went. (cli.ts adds its own stdout policy: a closed stdout
 * ends read-only commands early, `inspect m | head`.)
 */
export function tolerateClosedStream(stream: NodeJS.WriteStream): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', () => {
    broken.add(stream);
  });
}

/** Writes `s` unless the stream is closed or broken; never throws. */
function writeTo(stream: NodeJS.WriteStream, s: string): void {
  if (broken.has(stream) || stream.destroyed || stream.writableEnded) return;
  try {
    stream.write(s);
  } catch {
    broken.add(stream);
  }
}

/** CliIO bound to this process's stdout and stderr (both tolerate a closed reader: EPIPE). */
export function processIO(): CliIO {
  tolerateClosedStream(process.stdout);
  tolerateClosedStream(process.stderr);
  return {
    out: (s) => writeTo(process.stdout, s),
    err: (s) => writeTo(process.stderr, s),
    errIsTTY: process.stderr.isTTY === true,
    setExitCode: (c) => {
      process.exitCode = c;
    },
  };
}
