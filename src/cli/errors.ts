/**
 * How the CLI fails: one line on stderr (`error: …`), exit code 1 for a failure and 2 for a usage
 * error (bad flags, a missing argument). `--verbose` adds the stack and the `cause` chain.
 */
import { CommanderError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A bad command line: a flag value out of range, flags that exclude each other, a missing one. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The subcommand it concerns (`export`), for the `--help` hint. */
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

/** Where a command writes: stdout for results, stderr for progress, warnings and errors. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal (progress bars are drawn only then). */
  readonly errIsTTY: boolean;
  /** Set the process exit code for a command that ran but failed its check (e.g. verify). */
  setExitCode(code: number): void;
}

/** Collapses a (possibly multi-line) message into one line. */
export function oneLine(message: string): string {
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

/** The message of anything thrown, as one line without a leading `error:`. */
export function errorMessage(e: unknown): string {
  const raw = e instanceof Error ? e.message : typeof e === 'string' ? e : `non-error value thrown: ${String(e)}`;
  const line = oneLine(raw).replace(/^error:\s*/i, '');
  return line === '' ? (e instanceof Error ? e.name : 'unknown error') : line;
}

/** Exit code for an error: 0 for commander's help/version "errors", 2 for usage errors, else 1. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (e instanceof UsageError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** What to print for an error: `error: …` (one line), plus the stack and causes when verbose. */
export function formatError(e: unknown, verbose: boolean): string {
  let text = `error: ${errorMessage(e)}`;
  if (e instanceof UsageError) text += ` (see 'mamba2-onnx ${e.command ? `${e.command} ` : ''}--help')`;
  text += '\n';
  if (!verbose) return text;
  let cur: unknown = e;
  for (let depth = 0; cur instanceof Error && depth < 8; depth++) {
    text += `${depth === 0 ? '' : 'caused by: '}${cur.stack ?? `${cur.name}: ${cur.message}`}\n`;
    cur = cur.cause;
  }
  return text;
}
