/**
 * Export progress on stderr: a cli-progress bar over the tensors of the 'write' phase when stderr is
 * a terminal, otherwise a few plain lines (one per phase) so logs stay readable.
 */
import cliProgress from 'cli-progress';
import type { ExportProgress } from '../export/index.js';
import type { CliIO } from './errors.js';

export interface ProgressReporter {
  onProgress(p: ExportProgress): void;
  /** Stops the bar (idempotent); call before printing anything else on stderr. */
  stop(): void;
}

const PHASE_TEXT: Record<Exclude<ExportProgress['phase'], 'write' | 'done'>, string> = {
  read: 'reading the checkpoint',
  build: 'building the graph',
};

export function exportProgress(io: CliIO, stream: NodeJS.WritableStream = process.stderr): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let phase: ExportProgress['phase'] | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const onProgress = (p: ExportProgress): void => {
    const first = p.phase !== phase;
    phase = p.phase;
    if (p.phase === 'read' || p.phase === 'build') {
      if (first) io.err(`${PHASE_TEXT[p.phase]} …\n`);
      return;
    }
    if (p.phase === 'done') {
      stop();
      return;
    }
    // write: one event per tensor (done = tensors written so far)
    if (!io.errIsTTY) {
      if (first) io.err(`writing ${p.total} tensors …\n`);
      return;
    }
    if (bar === undefined) {
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: 'writing [{bar}] {value}/{total} tensors  {detail}',
          barsize: 30,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total, p.done, { detail: '' });
    }
    bar.update(p.done, { detail: shorten(p.detail ?? '', 48) });
  };
  return { onProgress, stop };
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `…${s.slice(s.length - n + 1)}`;
}
