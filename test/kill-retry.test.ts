/**
 * Kill and retry at once (issue 20, finding 2): an export SIGKILLed mid-way leaves its temporary
 * directory, and the very next export — started right away, not 30 s later — removes it, because
 * the temporary directory's owner record (pid + process start time, host, boot id) says its owner
 * is gone. Entries without a record (older versions) keep the age rule; a pid that was reused by
 * another process does not keep a leftover alive.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportModel } from '../src/export/index.js';
import { cleanStaleTemps, ownerRecord, pidAlive } from '../src/export/stale-temp.js';

const REPO = resolve(import.meta.dirname, '..');
const DRIVER = join(REPO, 'test/helpers/export-driver.ts');
const root = mkdtempSync(join(tmpdir(), 'm2o-retry-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PRESET = join(root, 'retry-preset.json');
writeFileSync(
  PRESET,
  JSON.stringify({
    source: 'kill-and-retry test',
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

/** Runs the export driver and SIGKILLs it on its `onLine`-th `progress write` line; resolves once it is dead. */
function exportAndKill(outDir: string, onLine: number, overwrite: boolean): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, PRESET, outDir, '1', ...(overwrite ? ['--overwrite'] : [])], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let writes = 0;
    let buf = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('progress write') && ++writes === onLine) child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('close', (code, signal) =>
      signal === 'SIGKILL' ? done() : fail(new Error(`export-driver was not killed (exit ${code}): ${err}`)),
    );
  });
}

const leftovers = (parent: string): string[] => readdirSync(parent).filter((n) => n.includes('.tmp-'));

describe('kill, then export again at once', () => {
  it('the next export removes the killed one’s temporary directory right away (no 30 s wait)', async () => {
    const parent = join(root, 'retry');
    mkdirSync(parent);
    const out = join(parent, 'model');
    for (let round = 0; round < 3; round++) {
      await exportAndKill(out, 5 + round * 10, round > 0);
      expect(leftovers(parent).length, 'the kill left a partial export').toBeGreaterThan(0);
      expect(existsSync(out)).toBe(round > 0); // the first round had nothing before; later rounds replace
      const warnings: string[] = [];
      await exportModel(
        { preset: PRESET, randomWeights: true, seed: 1 },
        { outDir: out, overwrite: true, externalData: 'always', onWarning: (w) => warnings.push(w) },
      );
      expect(leftovers(parent), `round ${round}`).toEqual([]);
      expect(warnings.join('\n')).toMatch(/removed \d+ temporar/);
      expect(readdirSync(parent)).toEqual(['model']);
    }
  }, 120_000);
});

describe('owner records', () => {
  /** A pid that is certainly not running: a child that has exited. */
  const deadPid = (): number => {
    const c = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(c.stdout.toString());
    expect(pidAlive(pid)).toBe(false);
    return pid;
  };
  /** A leftover of `pid` with an owner record `rec` (written where exportModel writes it). */
  const leftover = (parent: string, name: string, rec: object | undefined): string => {
    const dir = join(parent, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.onnx'), 'partial');
    if (rec !== undefined) writeFileSync(`${dir}.owner`, JSON.stringify(rec));
    return dir;
  };

  it('a dead owner: removed at once; a live owner: kept; no record: the age rule', async () => {
    const parent = join(root, 'records');
    const dead = deadPid();
    const me = ownerRecord(process.pid);
    leftover(parent, `.m.tmp-${dead}-01`, { ...me, pid: dead });
    leftover(parent, `.m.tmp-${process.ppid}-02`, ownerRecord(process.ppid)); // alive: the test runner
    leftover(parent, `.m.tmp-${dead}-03`, undefined); // an older version's leftover, fresh
    const res = await cleanStaleTemps(join(parent, 'm'));
    expect(res.removed.map((p) => p.slice(parent.length + 1)).sort()).toEqual([`.m.tmp-${dead}-01`, `.m.tmp-${dead}-01.owner`]);
    expect(readdirSync(parent).sort()).toEqual(
      [`.m.tmp-${dead}-03`, `.m.tmp-${process.ppid}-02`, `.m.tmp-${process.ppid}-02.owner`].sort(),
    );
  });

  it('a reused pid does not keep a leftover alive (the start time differs)', async () => {
    const rec = ownerRecord(process.ppid);
    if (rec.startTime === undefined) return; // no process start times on this platform: pid only
    const parent = join(root, 'reused');
    // the record says: pid = a live process (our parent), but one that started at another time
    leftover(parent, `.m.tmp-${process.ppid}-0a`, { ...rec, startTime: String(BigInt(rec.startTime) + 1n) });
    const res = await cleanStaleTemps(join(parent, 'm'));
    expect(res.removed).toHaveLength(2);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('a record from another host or boot cannot be checked: the age rule applies', async () => {
    const parent = join(root, 'elsewhere');
    const dead = deadPid();
    leftover(parent, `.m.tmp-${dead}-0b`, { ...ownerRecord(process.pid), pid: dead, host: 'some-other-host' });
    leftover(parent, `.m.tmp-${dead}-0c`, { ...ownerRecord(process.pid), pid: dead, bootId: '00000000-0000-0000-0000-000000000000' });
    expect((await cleanStaleTemps(join(parent, 'm'))).removed).toEqual([]);
    expect((await cleanStaleTemps(join(parent, 'm'), { minAgeMs: 0 })).removed).toHaveLength(4);
  });

  it('exportModel writes the record beside its temporary directory and removes it when done', async () => {
    const parent = join(root, 'own');
    const out = join(parent, 'm');
    const seen: string[][] = [];
    await exportModel(
      { preset: 'tiny', randomWeights: true, seed: 1 },
      {
        outDir: out,
        onProgress: (p) => {
          if (p.phase === 'write' && p.done === 1) seen.push(readdirSync(parent));
        },
      },
    );
    expect(seen[0]!.some((n) => /^\.m\.tmp-\d+-[0-9a-f]+\.owner$/.test(n))).toBe(true);
    expect(readdirSync(parent)).toEqual(['m']);
    expect(readdirSync(out)).not.toContain('.owner');
  });
});
