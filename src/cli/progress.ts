/**
 * Export progress on stderr: a cli-progress bar over the tensors of the 'write' phase when stderr is
 * a terminal, otherwise a few plain lines (one per phase) so logs stay readable.
 *
 * Progress is never worth failing an export for: when the stream goes away (the terminal closed, a
 * pipe's reader exited: EPIPE), the bar stops for good and the export goes on.
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
  /** The stream failed (EPIPE, EIO…): no bar any more. */
  let gone = false;
  const closed = (): boolean => {
    const w = stream as NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean };
    return gone || w.destroyed === true || w.writableEnded === true;
  };
  const onError = (): void => {
    gone = true;
    stop();
  };
  /** Runs a bar operation; a throw means the stream is gone. */
  const safely = (f: () => void): void => {
    try {
      f();
    } catch {
      gone = true;
    }
  };
  const stop = (): void => {
    const b = bar;
    if (b === undefined) return;
    bar = undefined;
    safely(() => b.stop()); // also clears its redraw timer; on a closed stream its writes fail quietly (onError)
    // errors of the last writes arrive on a later tick: keep listening until then
    setImmediate(() => stream.off('error', onError));
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
    if (closed()) return;
    if (bar === undefined) {
      stream.on('error', onError);
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
      const b = bar;
      safely(() => b.start(p.total, p.done, { detail: '' }));
    }
    const b = bar;
    safely(() => b.update(p.done, { detail: shorten(p.detail ?? '', 48) }));
    if (gone) stop();
  };
  return { onProgress, stop };
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `…${s.slice(s.length - n + 1)}`;
}
