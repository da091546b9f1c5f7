/**
 * Shared by bench/serve-bench.ts and bench/serve-soak.ts: start `mamba2-onnx serve` as a child
 * process on a loopback port, stream completions from it, read its RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Resident set size of the server process in bytes (Linux /proc). */
  rss(): number;
  stop(): Promise<number | null>;
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../bin/mamba2-onnx.js');

export async function startServe(modelDir: string, extra: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', modelDir, '--port', '0', '--model-name', 'bench', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = Date.now() + 120_000;
  while (!/ready on /.test(err)) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`serve did not start:\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (http:\/\/\S+)/.exec(err)![1]!;
  return {
    url,
    child,
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface StreamResult {
  ok: boolean;
  status: number;
  error?: string;
  /** Arrival time (performance.now()) of each token. */
  tokenTimes: number[];
  tokenIds: number[];
  startedAt: number;
  finishReason?: string;
}

/** One streaming completion; collects token arrival times. */
export async function streamCompletion(url: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<StreamResult> {
  const startedAt = performance.now();
  const tokenTimes: number[] = [];
  const tokenIds: number[] = [];
  let res: Response;
  try {
    res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', ...body, stream: true }),
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    return { ok: false, status: 0, error: (e as Error).message, tokenTimes, tokenIds, startedAt };
  }
  if (res.status !== 200) return { ok: false, status: res.status, error: await res.text(), tokenTimes, tokenIds, startedAt };
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let finishReason: string | undefined;
  let done = false;
  try {
    while (!done) {
      const r = await reader.read();
      if (r.done) break;
      buf += dec.decode(r.value, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const line = buf.slice(0, i).replace(/^data: /, '');
        buf = buf.slice(i + 2);
        if (line === '[DONE]') {
          done = true;
          break;
        }
        const chunk = JSON.parse(line) as {
          error?: { message: string };
          choices?: { token_ids: number[]; finish_reason: string | null }[];
        };
        if (chunk.error) return { ok: false, status: 200, error: chunk.error.message, tokenTimes, tokenIds, startedAt };
        const c = chunk.choices?.[0];
        if (!c) continue;
        const t = performance.now();
        for (const id of c.token_ids) {
          tokenTimes.push(t);
          tokenIds.push(id);
        }
        if (c.finish_reason) finishReason = c.finish_reason;
      }
    }
  } catch (e) {
    return { ok: false, status: 200, error: (e as Error).message, tokenTimes, tokenIds, startedAt };
  }
  return done
    ? { ok: true, status: 200, tokenTimes, tokenIds, startedAt, ...(finishReason ? { finishReason } : {}) }
    : { ok: false, status: 200, error: 'stream ended without [DONE]', tokenTimes, tokenIds, startedAt };
}

/** Token ids of a synthetic prompt (k varies it), within `vocab`. */
export const syntheticPrompt = (k: number, length: number, vocab: number): number[] =>
  Array.from({ length }, (_, i) => (i * 7919 + k * 104729 + 13) % vocab);

export function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) out.set('_', a);
    else out.set(a.slice(2), argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[++i]! : 'true');
  }
  return out;
}
