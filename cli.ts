/**
 * Entry point of the `mamba2-onnx` command (bin/mamba2-onnx.js runs it through tsx; `npm run cli`
 * too). The program itself is src/cli/main.ts.
 */
import { errorMessage, EXIT_FAILURE } from './src/cli/errors.js';
import { main, processIO } from './src/cli/main.js';

const fatal = (e: unknown): void => {
  process.stderr.write(`error: ${errorMessage(e)}\n`);
  if (process.argv.includes('--verbose') && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(EXIT_FAILURE);
};
// `mamba2-onnx inspect m | head`: a closed stdout is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(process.exitCode ?? 0) : fatal(e)));
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

process.exitCode = await main(process.argv.slice(2), processIO());
