/**
 * Can an export be written at `outDir`? Checked before the checkpoint is read or anything is built,
 * so that a hopeless output fails in one line at once instead of after the whole build (a read-only
 * parent: EACCES at the first write) or never (Node 20's recursive mkdir loops forever under /proc:
 * `mkdir("/proc/.m.tmp-…")` says ENOENT, `mkdir("/proc")` EEXIST, and round again).
 *
 * The parent of `outDir` must be a directory, or be missing under an existing directory (the nearest
 * existing ancestor): missing parents are created like `mkdir -p`, but only when the model is
 * written (createParents), one level at a time, so a failed export leaves none of them behind. That
 * directory must be
 *   - on a filesystem that holds files (Linux: not procfs, sysfs, cgroupfs, debugfs… by statfs
 *     type),
 *   - writable by this user (access W_OK | X_OK),
 *   - and really writable: a probe directory is created in it and removed again, non-recursively
 *     (this catches read-only mounts, ACLs, root on NFS, and filesystems statfs does not name).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, rmdir, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** Linux statfs f_type of pseudo filesystems, which hold no regular files (linux/magic.h). */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroupfs'],
  [0x63677270, 'cgroup2fs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpffs'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstorefs'],
  [0xde5e81e4, 'efivarfs'],
  [0x1cd1, 'devpts'],
  [0xf97cff8c, 'selinuxfs'],
  [0x65735543, 'fusectl'],
  [0x958458f6, 'hugetlbfs'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'],
]);

/** Path components at most: the walk up to an existing ancestor is bounded by this. */
const MAX_DEPTH = 4096;

export interface OutputParent {
  /** dirname(outDir), absolute. */
  parent: string;
  /** The nearest existing ancestor (the parent itself when it exists). */
  existing: string;
  /** Directories to create, outermost first (empty when the parent exists). */
  missing: string[];
}

const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));

/**
 * Checks where `outDir` would be written (see the module doc); throws one line
 * `<label>: cannot write '<outDir>': <reason>` otherwise. Creates nothing that outlives the call.
 */
export async function checkOutputParent(outDir: string, label = 'outDir'): Promise<OutputParent> {
  const out = resolve(outDir);
  const fail = (reason: string): never => {
    throw new Error(`${label}: cannot write '${outDir}': ${reason}`);
  };
  const parent = dirname(out);
  const missing: string[] = [];
  let dir = parent;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_DEPTH) fail(`its path has more than ${MAX_DEPTH} components`);
    let isDir: boolean;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch (e) {
      const c = code(e);
      if (c === 'ENOENT') {
        const up = dirname(dir);
        if (up === dir) fail(`no part of '${parent}' exists`);
        missing.unshift(dir);
        dir = up;
        continue;
      }
      if (c === 'ENOTDIR') {
        dir = dirname(dir); // a file further up: find it
        missing.length = 0;
        continue;
      }
      return fail(`'${dir}' cannot be read (${c})`);
    }
    if (!isDir) fail(`'${dir}' is not a directory`);
    break;
  }
  if (process.platform === 'linux') {
    const fs = await statfs(dir).catch(() => undefined);
    const kind = fs === undefined ? undefined : PSEUDO_FS.get(Number(fs.type));
    if (kind !== undefined) fail(`'${dir}' is on ${kind === 'procfs' ? 'a proc filesystem (procfs)' : kind}, not a filesystem for files`);
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    fail(`'${dir}' is not writable by this user (${code(e)})`);
  }
  // a real write: a probe directory, created and removed without recursion
  const probe = join(dir, `.${basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}.probe`);
  try {
    await mkdir(probe);
  } catch (e) {
    const c = code(e);
    fail(
      `'${dir}' is not writable${c === 'EACCES' || c === 'EPERM' || c === 'EROFS' ? ' by this user' : ''} (creating a directory in it: ${c}${c === 'EROFS' ? ', a read-only filesystem' : ''})`,
    );
  }
  await rmdir(probe).catch(() => undefined);
  return { parent, existing: dir, missing };
}

/** Creates `p.missing` one level at a time (no recursive mkdir); returns those it created. */
export async function createParents(p: OutputParent): Promise<string[]> {
  const made: string[] = [];
  for (const d of p.missing) {
    try {
      await mkdir(d);
      made.push(d);
    } catch (e) {
      if (code(e) !== 'EEXIST') {
        await removeParents(made);
        throw e;
      }
    }
  }
  return made;
}

/** Removes directories createParents made, innermost first, if they are (still) empty. */
export async function removeParents(made: readonly string[]): Promise<void> {
  for (const d of [...made].reverse()) await rmdir(d).catch(() => undefined);
}
