/**
 * Where an export may be written (issue 20, finding 1): the output's parent is checked before the
 * checkpoint is read or anything is built. A parent on procfs / sysfs (Node 20's recursive mkdir
 * spins forever there), a file, a read-only directory: one-line errors naming `outDir`, at once,
 * nothing left behind. Missing parents are created (like `mkdir -p`) under an existing writable
 * ancestor, only once the model is written: a failed export leaves none of them.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportModel } from './index.js';

const REPO = resolve(import.meta.dirname, '../..');
const root = mkdtempSync(join(tmpdir(), 'm2o-outparent-'));
chmodSync(root, 0o755); // the read-only test may run as another user (when this runs as root)
afterAll(() => rmSync(root, { recursive: true, force: true }));

const TINY = { preset: 'tiny', randomWeights: true as const, seed: 1 };
/** A checkpoint that does not exist: an error about it means the checkpoint was looked at first. */
const NO_CKPT = { checkpointDir: join(root, 'no-such-checkpoint') };

/** Rejects within `ms` (the /proc case used to spin forever at 100 % CPU). */
async function rejectsQuickly(p: Promise<unknown>, ms = 5_000): Promise<Error> {
  const timeout = new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`still running after ${ms} ms`)), ms).unref());
  try {
    await Promise.race([p, timeout]);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection, the export succeeded');
}

const linux = process.platform === 'linux';

describe('the output parent is checked up front', () => {
  it.runIf(linux && existsSync('/proc/self'))(
    'a parent on procfs (/proc/m): one line naming outDir and procfs, before the checkpoint is read',
    async () => {
      const e = await rejectsQuickly(exportModel(NO_CKPT, { outDir: '/proc/m' }));
      expect(e.message).toMatch(/^outDir: cannot write '\/proc\/m': .*\/proc.* proc/);
      expect(e.message).not.toMatch(/checkpoint/);
      expect(e.message).not.toContain('\n');
      const e2 = await rejectsQuickly(exportModel(TINY, { outDir: '/proc/m' }));
      expect(e2.message).toMatch(/^outDir: .*proc/);
    },
    15_000,
  );

  it.runIf(linux && existsSync('/sys/kernel'))(
    'a parent on sysfs (/sys/kernel/m)',
    async () => {
      const e = await rejectsQuickly(exportModel(NO_CKPT, { outDir: '/sys/kernel/m' }));
      expect(e.message).toMatch(/^outDir: cannot write '\/sys\/kernel\/m': .*sysfs/);
    },
    15_000,
  );

  it('a parent that is a file', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const e = await rejectsQuickly(exportModel(NO_CKPT, { outDir: join(file, 'm') }));
    expect(e.message).toMatch(/^outDir: cannot write .*a-file.*not a directory/);
    const deeper = await rejectsQuickly(exportModel(NO_CKPT, { outDir: join(file, 'sub', 'm') }));
    expect(deeper.message).toMatch(/^outDir: cannot write .*a-file.*not a directory/);
  });

  it('a read-only parent fails up front (not with EACCES after the build), leaving nothing', () => {
    const parent = join(root, 'read-only');
    mkdirSync(parent);
    chmodSync(parent, 0o555);
    // root ignores permission bits: run the export as `nobody` then
    const asRoot = process.getuid?.() === 0;
    const script = join(root, 'ro-export.mts');
    writeFileSync(
      script,
      `import { exportModel } from ${JSON.stringify(join(REPO, 'src/export/index.ts'))};\n` +
        `const t0 = Date.now();\n` +
        `for (const [src, out] of [[${JSON.stringify(NO_CKPT)}, ${JSON.stringify(join(parent, 'm'))}], [${JSON.stringify(TINY)}, ${JSON.stringify(join(parent, 'new', 'm'))}]]) {\n` +
        `  try { await exportModel(src, { outDir: out }); console.log('exported'); } catch (e) { console.log(JSON.stringify({ message: e.message, ms: Date.now() - t0 })); }\n` +
        `}\n`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, HOME: root },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: string; ms: number });
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l.message).toMatch(/^outDir: cannot write .*read-only.*not writable/);
      expect(l.message).not.toMatch(/checkpoint/);
    }
    expect(lines[1]!.ms, 'no graph was built first').toBeLessThan(5_000);
    chmodSync(parent, 0o755);
    expect(readdirSync(parent)).toEqual([]);
  }, 90_000);
});

describe('missing parents', () => {
  it('are created under an existing writable ancestor when the export succeeds', async () => {
    const out = join(root, 'deep', 'a', 'b', 'm');
    const r = await exportModel(TINY, { outDir: out });
    expect(r.outDir).toBe(out);
    expect(existsSync(join(out, 'mamba2-onnx.json'))).toBe(true);
    expect(readdirSync(join(root, 'deep', 'a', 'b'))).toEqual(['m']);
  });

  it('are not left behind when the export fails', async () => {
    const base = join(root, 'fails');
    mkdirSync(base);
    await expect(exportModel(NO_CKPT, { outDir: join(base, 'x', 'y', 'm') })).rejects.toThrow(/checkpoint/);
    expect(readdirSync(base)).toEqual([]);
  });
});
