/**
 * Exports are atomic: a process exporting a 5.6M-parameter preset (external data) is SIGKILLed at
 * random points (seeded: KILL_SEED=n) — at random times, or on random progress events — and the
 * output path must then hold either a complete model, byte-identical to a full export of the previous
 * or the new seed, or nothing when there was none before. The model left there loads and runs in
 * onnxruntime-node. Temporary directories a kill leaves beside it are removed by cleanStaleTemps
 * (src/export/stale-temp.ts), which also restores the previous output if the kill fell between the
 * two renames of the swap.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanStaleTemps, pidAlive } from '../src/export/stale-temp.js';
import { loadModelSummary } from '../src/graph/load.js';
import { rand } from './helpers/ort.js';
import { Runner } from './helpers/model-runner.js';

const REPO = resolve(import.meta.dirname, '..');
const DRIVER = join(REPO, 'test/helpers/export-driver.ts');
const SEED = Number(process.env.KILL_SEED ?? 7);
const TRIALS = Number(process.env.KILL_TRIALS ?? 8);
const root = mkdtempSync(join(tmpdir(), 'm2o-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PRESET = join(root, 'kill-preset.json');
writeFileSync(
  PRESET,
  JSON.stringify({
    source: 'kill-during-export test',
    format: 'mamba_ssm',
    config: {
      d_model: 256,
      n_layer: 8,
      vocab_size: 8192,
      ssm_cfg: { layer: 'Mamba2', d_state: 64, headdim: 64, chunk_size: 64 },
      pad_vocab_size_multiple: 8,
    },
  }),
);

interface Run {
  killed: boolean;
  lines: string[];
  code: number | null /** From the `start` line to `done` (or the kill). */;
  exportMs: number;
}

/** Runs the driver; `kill` SIGKILLs it `afterMs` after its `start` line, or on stdout line number `onLine`. */
function runDriver(outDir: string, seed: number, overwrite: boolean, kill?: { afterMs?: number; onLine?: number }): Promise<Run> {
  return new Promise((done, fail) => {
    let t0 = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', DRIVER, PRESET, outDir, String(seed), ...(overwrite ? ['--overwrite'] : [])],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: string[] = [];
    let killed = false;
    let err = '';
    const killNow = (): void => {
      if (!killed && child.exitCode === null) killed = child.kill('SIGKILL');
    };
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (lines.at(-1) === 'start') {
          t0 = Date.now();
          if (kill?.afterMs !== undefined) setTimeout(killNow, kill.afterMs);
        }
        if (kill?.onLine !== undefined && lines.length - 1 === kill.onLine) killNow();
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      if (!killed && code !== 0) fail(new Error(`export-driver exited with ${code}: ${err}`));
      else done({ killed, lines, code, exportMs: Date.now() - t0 });
    });
  });
}

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
/** Hash of a model directory: its files and their contents. */
function dirHash(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(`${f}\0${sha(join(dir, f))}\0`);
  return h.digest('hex');
}

async function loadsAndRuns(dir: string): Promise<void> {
  const summary = await loadModelSummary(join(dir, 'model.onnx')); // every external offset inside the data file
  expect(summary.externalData).toHaveLength(1);
  const r = await Runner.open(dir);
  try {
    const { logits, dims } = await r.forward([[1, 2, 3, 4, 5]]);
    expect(dims).toEqual([1, 5, 8192]);
    expect(logits.every(Number.isFinite)).toBe(true);
  } finally {
    await r.release();
  }
}

describe('kill during export', () => {
  it(`SIGKILL at ${TRIALS} + 2 random points leaves the previous complete model, the new one, or nothing`, async () => {
    const r = rand(SEED);
    const parent = join(root, 'trials');
    mkdirSync(parent);
    const out = join(parent, 'model');
    // the complete models a trial may leave: full exports of seeds 1 (also the first output) and 2
    const full: Record<number, { hash: string; run: Run }> = {};
    for (const seed of [2, 1]) {
      const dir = seed === 1 ? out : join(root, 'reference-seed2');
      const run = await runDriver(dir, seed, false);
      full[seed] = { hash: dirHash(dir), run };
    }
    await loadsAndRuns(out);
    /** A random kill point: a time after `start`, or a progress line (+ the signal's own latency). */
    const killPoint = (t: number, seed: number): { afterMs?: number; onLine?: number } => {
      const { exportMs, lines } = full[seed]!.run;
      // times up to 1.3× the export (some land after the swap); lines denser towards the end (the swap)
      return t % 2 === 0
        ? { afterMs: Math.floor(r(0, 1.3) * exportMs) }
        : { onLine: Math.min(lines.length - 1, Math.floor(Math.sqrt(r(0, 1)) * lines.length)) };
    };
    const stats = { trials: 0, killed: 0, completed: 0, leftTemp: 0, kept: 0, replaced: 0, nothing: 0 };
    /** Runs one trial at `target` and checks what it left; returns the seed of the model now there. */
    const trial = async (t: number, target: string, current: number | undefined): Promise<number | undefined> => {
      const seed = current === 1 ? 2 : 1;
      const kill = killPoint(t, seed);
      const run = await runDriver(target, seed, current !== undefined, kill);
      stats.trials++;
      if (run.killed) stats.killed++;
      else stats.completed++;
      const leftovers = readdirSync(parent).filter((n) => !n.startsWith('model'));
      for (const n of leftovers)
        expect(n, 'only temporary directories of the export (and their owner records)').toMatch(
          /^\.model(-fresh\d)?\.tmp-\d+-[0-9a-f]+(\.old|\.owner|\.probe)?$/,
        );
      if (leftovers.length > 0) stats.leftTemp++;
      const cleaned = await cleanStaleTemps(target, { minAgeMs: 0 }); // what the next export does first
      expect(readdirSync(parent).filter((n) => !n.startsWith('model'))).toEqual([]);
      if (cleaned.restored) expect(current, 'restored a previous output').toBeDefined();
      if (!existsSync(target)) {
        expect(current, `trial ${t}: the previous model (seed ${current}) is gone`).toBeUndefined();
        stats.nothing++;
        return undefined;
      }
      const h = dirHash(target);
      const now = h === full[seed]!.hash ? seed : h === full[current ?? -1]?.hash ? current : undefined;
      expect(now, `trial ${t} (${JSON.stringify(kill)}): ${target} holds neither the previous nor the new complete model`).toBeDefined();
      if (now === current) stats.kept++;
      else stats.replaced++;
      return now;
    };
    // no previous model: the output is a complete model or absent
    for (let t = 0; t < 2; t++) await trial(t, join(parent, `model-fresh${t}`), undefined);
    // overwriting a complete model: it stays, or the new one replaces it whole
    let current: number | undefined = 1;
    for (let t = 0; t < TRIALS; t++) current = await trial(t, out, current);
    expect(current).toBeDefined();
    await loadsAndRuns(out);
    process.stdout.write(`kill-during-export: ${JSON.stringify(stats)}\n`);
    expect(stats.killed).toBeGreaterThanOrEqual(TRIALS / 2);
  });
});

describe('cleanStaleTemps', () => {
  /** A pid that is certainly not running: a child that has exited. */
  const deadPid = (): number => {
    const c = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(c.stdout.toString());
    expect(pidAlive(pid)).toBe(false);
    return pid;
  };
  const model = (dir: string, tag: string): void => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.onnx'), tag);
    writeFileSync(join(dir, 'model.onnx.data'), tag);
    writeFileSync(
      join(dir, 'mamba2-onnx.json'),
      JSON.stringify({ files: { model: 'model.onnx', data: 'model.onnx.data', tokenizer: [] } }),
    );
  };

  it('restores the previous output when the kill fell between the two renames, and removes the new temp dir', async () => {
    const parent = join(root, 'swap');
    const pid = deadPid();
    model(join(parent, `.m.tmp-${pid}-00ff.old`), 'previous');
    model(join(parent, `.m.tmp-${pid}-00ff`), 'new');
    const warnings: string[] = [];
    const res = await cleanStaleTemps(join(parent, 'm'), { minAgeMs: 0, onWarning: (w) => warnings.push(w) });
    expect(readdirSync(parent)).toEqual(['m']);
    expect(readFileSync(join(parent, 'm/model.onnx'), 'utf8')).toBe('previous');
    expect(res.removed).toHaveLength(1);
    expect(warnings.join('\n')).toMatch(/restored the previous output/);
  });

  it('leaves live and recent exports alone, removes an incomplete .old when the output exists', async () => {
    const parent = join(root, 'mixed');
    const dead = deadPid();
    model(join(parent, 'm'), 'current');
    mkdirSync(join(parent, `.m.tmp-${dead}-01.old`)); // half-removed after a swap
    model(join(parent, `.m.tmp-${process.ppid}-02`), 'live'); // the parent process is alive
    model(join(parent, `.m.tmp-${dead}-03`), 'recent');
    model(join(parent, `.other.tmp-${dead}-04`), 'another output');
    const old = Date.now() / 1000 - 3600;
    utimesSync(join(parent, `.m.tmp-${dead}-01.old`), old, old);
    const res = await cleanStaleTemps(join(parent, 'm'), { minAgeMs: 60_000 });
    expect(res.removed.map((p) => p.slice(parent.length + 1))).toEqual([`.m.tmp-${dead}-01.old`]);
    expect(readdirSync(parent).sort()).toEqual([`.m.tmp-${dead}-03`, `.m.tmp-${process.ppid}-02`, `.other.tmp-${dead}-04`, 'm'].sort());
    expect(await cleanStaleTemps(join(parent, 'nothing-here', 'x'))).toEqual({ removed: [] });
  });
});
