/**
 * `mamba2-onnx export` from a hostile first use (issue 20): an output under /proc, and stdout /
 * stderr closed early (`… 2>&1 | head -1`). The real CLI as a child process (bin/mamba2-onnx.js).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { exportProgress } from './progress.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'mamba2-onnx.js');
const tmp = mkdtempSync(join(tmpdir(), 'm2o-export-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: readonly string[], timeout = 60_000): Promise<Run> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: tmp, timeout, killSignal: 'SIGKILL', env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        done({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

/** A complete model directory, and nothing else beside it in `parent`. */
function expectOnlyTheModel(parent: string, name: string): void {
  expect(readdirSync(parent)).toEqual([name]);
  expect(readdirSync(join(parent, name)).sort()).toEqual(['mamba2-onnx.json', 'model.onnx']);
}

describe('export --out on a filesystem that cannot hold it', () => {
  it.runIf(process.platform === 'linux' && existsSync('/proc/self'))(
    '--out /proc/m fails at once, in one line naming --out (it used to spin at 100 % CPU)',
    async () => {
      const r = await cli(['export', '--preset', 'tiny', '--random-weights', '--out', '/proc/m'], 20_000);
      expect(r.code, `${r.stderr} (after ${r.ms} ms)`).toBe(1);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^error: --out: cannot write '\/proc\/m': .*proc/);
      expect(r.stdout).toBe('');
    },
    30_000,
  );
});

describe('a closed stdout / stderr (EPIPE) neither kills the export nor leaves files', () => {
  it('both pipes closed before the first byte: the export completes, exit 0', async () => {
    const parent = join(tmp, 'closed-early');
    mkdirSync(parent);
    const child = spawn(process.execPath, [BIN, 'export', '--preset', 'tiny', '--random-weights', '--out', join(parent, 'm')], {
      cwd: tmp,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // like `| head -0`: the reader goes away at once, every write of the child gets EPIPE
    child.stdout.destroy();
    child.stderr.destroy();
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(code).toBe(0);
    expectOnlyTheModel(parent, 'm');
  }, 60_000);

  it('`export … 2>&1 | head -1`: the first line, then exit 0 and a complete model', async () => {
    const parent = join(tmp, 'head');
    mkdirSync(parent);
    const out = join(parent, 'm');
    const cmd = `"${process.execPath}" "${BIN}" export --preset tiny --random-weights --out "${out}" 2>&1 | head -1; echo "exit=\${PIPESTATUS[0]}"`;
    const r = await new Promise<{ stdout: string; stderr: string }>((done, fail) =>
      execFile('bash', ['-c', cmd], { cwd: tmp, timeout: 60_000 }, (err, stdout, stderr) => (err ? fail(err) : done({ stdout, stderr }))),
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/reading|building|writing/);
    expect(lines.at(-1), r.stderr).toBe('exit=0');
    expectOnlyTheModel(parent, 'm');
  }, 60_000);

  it('the progress bar on a terminal that went away: no uncaught EPIPE, the bar stops', async () => {
    const errors: string[] = [];
    let writes = 0;
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        writes++;
        const e = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' });
        cb(e);
      },
    }) as Writable & { isTTY: boolean; columns: number };
    stream.isTTY = true;
    stream.columns = 80;
    const io = { out: () => {}, err: (s: string) => void errors.push(s), errIsTTY: true, setExitCode: () => {} };
    const progress = exportProgress(io, stream);
    progress.onProgress({ phase: 'read', done: 0, total: 1 });
    progress.onProgress({ phase: 'build', done: 0, total: 1 });
    for (let i = 0; i <= 50; i++) {
      progress.onProgress({ phase: 'write', done: i, total: 50, detail: `t${i}` });
      await new Promise((r) => setTimeout(r, 2));
    }
    progress.onProgress({ phase: 'done', done: 1, total: 1 });
    progress.stop();
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toBeGreaterThan(0);
    expect(errors.join('')).toMatch(/building the graph/);
  });
});
