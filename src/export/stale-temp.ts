/**
 * Leftovers of a killed export. exportModel writes into `.<name>.tmp-<pid>-<hex>` beside the output
 * and swaps it in with two renames (output → `<tmp>.old`, tmp → output, then removes `<tmp>.old`).
 * A process killed (SIGKILL, power loss) before it can clean up leaves these in the parent directory:
 *
 *   .<name>.tmp-<pid>-<hex>        a partial (or complete but never swapped) new export: removed
 *   .<name>.tmp-<pid>-<hex>.old    the previous output, moved aside: put back when the output is
 *                                  missing (killed between the two renames) and it is complete,
 *                                  removed otherwise (killed while removing it after the swap)
 *
 * Only entries of processes that are gone are touched (pid not alive on this host), and only when
 * nothing in them changed for `minAgeMs`: a pid from another host or container sharing the
 * directory cannot be checked, so a live export elsewhere is protected by its fresh mtimes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { META_FILE } from '../package/meta.js';

export interface StaleTempOptions {
  /** Entries whose newest file changed less than this long ago are left alone. Default 30 s. */
  minAgeMs?: number;
  /** Told what was put back or removed. */
  onWarning?: (message: string) => void;
  /** Whether a process id is alive (tests inject one). */
  isAlive?: (pid: number) => boolean;
}

export interface StaleTempResult {
  /** Absolute paths removed. */
  removed: string[];
  /** The `.old` directory renamed back to the output, when one was. */
  restored?: string;
}

const DEFAULT_MIN_AGE_MS = 30_000;

/** True unless `kill(pid, 0)` says there is no such process (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Newest mtime (ms) of `path` and, for a directory, of its direct entries. */
async function newestMtime(path: string): Promise<number> {
  const s = await stat(path);
  let t = s.mtimeMs;
  if (s.isDirectory()) {
    for (const e of await readdir(path)) t = Math.max(t, (await stat(join(path, e)).catch(() => s)).mtimeMs);
  }
  return t;
}

/** A model directory whose meta file parses and whose listed files all exist. */
function isComplete(dir: string): boolean {
  try {
    const meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as { files?: { model?: unknown; data?: unknown; tokenizer?: unknown } };
    const f = meta.files ?? {};
    const listed = [f.model, f.data, ...(Array.isArray(f.tokenizer) ? f.tokenizer : [])].filter((x): x is string => typeof x === 'string');
    return typeof f.model === 'string' && listed.every((x) => existsSync(join(dir, x)));
  } catch {
    return false;
  }
}

/**
 * Cleans what killed exports to `outDir` left in its parent: restores the previous output if a swap
 * was interrupted, removes the rest. Call before starting a new export to `outDir`.
 */
export async function cleanStaleTemps(outDir: string, opts: StaleTempOptions = {}): Promise<StaleTempResult> {
  const out = resolve(outDir);
  const parent = dirname(out);
  const minAge = opts.minAgeMs ?? DEFAULT_MIN_AGE_MS;
  const alive = opts.isAlive ?? pidAlive;
  const pattern = new RegExp(`^\\.${escapeRe(basename(out))}\\.tmp-(\\d+)-[0-9a-f]+(\\.old)?$`);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return { removed: [] }; // no parent yet: nothing to clean
  }
  const stale: { path: string; old: boolean; mtime: number }[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const path = join(parent, name);
    const mtime = await newestMtime(path).catch(() => undefined);
    if (mtime === undefined || Date.now() - mtime < minAge) continue;
    stale.push({ path, old: m[2] !== undefined, mtime });
  }
  const result: StaleTempResult = { removed: [] };
  if (!existsSync(out)) {
    // newest complete previous output first
    const candidate = stale.filter((s) => s.old && isComplete(s.path)).sort((a, b) => b.mtime - a.mtime)[0];
    if (candidate) {
      await rename(candidate.path, out);
      result.restored = candidate.path;
      opts.onWarning?.(`restored the previous output ${out} from ${basename(candidate.path)} (an export was killed while swapping it)`);
    }
  }
  for (const s of stale) {
    if (s.path === result.restored) continue;
    await rm(s.path, { recursive: true, force: true });
    result.removed.push(s.path);
  }
  if (result.removed.length > 0) {
    opts.onWarning?.(`removed ${result.removed.length} temporary director${result.removed.length === 1 ? 'y' : 'ies'} left by killed exports: ${result.removed.map((p) => basename(p)).join(', ')}`);
  }
  return result;
}
