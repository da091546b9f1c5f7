/**
 * Leftovers of a killed export. exportModel writes into `.<name>.tmp-<pid>-<hex>` beside the output
 * and swaps it in with two renames (output → `<tmp>.old`, tmp → output, then removes `<tmp>.old`).
 * A process killed (SIGKILL, power loss) before it can clean up leaves these in the parent directory:
 *
 *   .<name>.tmp-<pid>-<hex>.owner  the owner record (below): written first, removed last
 *   .<name>.tmp-<pid>-<hex>        a partial (or complete but never swapped) new export: removed
 *   .<name>.tmp-<pid>-<hex>.old    the previous output, moved aside: put back when the output is
 *                                  missing (killed between the two renames) and it is complete,
 *                                  removed otherwise (killed while removing it after the swap)
 *   .<name>.tmp-<pid>-<hex>.probe  the empty directory of the up-front write check: removed
 *
 * The owner record names the exporting process so that its leftovers can be removed as soon as it is
 * gone, even by an export started right after the kill: pid, the process's start time (Linux:
 * /proc/<pid>/stat, in clock ticks since boot, so a reused pid does not pass for the owner), the
 * host name, boot id and pid namespace (pids mean something only within those). It sits beside the
 * temporary directory rather than in it so that it covers every entry above (the temporary
 * directory becomes the output, whose contents are not ours to add to) and every moment of the swap.
 *
 *   owner known to be gone (same host, boot and pid namespace; pid not running, or running with
 *   another start time)                                    → removed at once
 *   owner alive                                            → left alone
 *   no record (older versions, or killed in the instant between its name and its record), or a
 *   record that cannot be checked here (another host / container / boot, or unreadable)
 *                                                          → the age rule: only when the pid in the
 *     name is not alive here and nothing in the entry changed for `minAgeMs` (a live export on
 *     another host sharing the directory is protected by its fresh mtimes)
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
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

/** Suffix of the owner record beside a temporary directory. */
export const OWNER_SUFFIX = '.owner';

/** Who created a temporary directory (JSON in `<tmp>.owner`). */
export interface OwnerRecord {
  pid: number;
  /** Process start time (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot), when known. */
  startTime?: string;
  host: string;
  /** /proc/sys/kernel/random/boot_id, when there is one. */
  bootId?: string;
  /** The pid namespace (`pid:[…]` of /proc/self/ns/pid), when known. */
  pidNs?: string;
}

const readText = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Start time of `pid` (clock ticks since boot), from /proc; undefined where there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses; starttime is field 22
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const t = fields[19];
  return t !== undefined && /^\d+$/.test(t) ? t : undefined;
}

let self: Omit<OwnerRecord, 'pid' | 'startTime'> | undefined;
/** This process's host, boot id and pid namespace. */
function here(): Omit<OwnerRecord, 'pid' | 'startTime'> {
  if (self === undefined) {
    let pidNs: string | undefined;
    try {
      pidNs = readlinkSync('/proc/self/ns/pid');
    } catch {
      pidNs = undefined;
    }
    const bootId = readText('/proc/sys/kernel/random/boot_id');
    self = { host: hostname(), ...(bootId ? { bootId } : {}), ...(pidNs ? { pidNs } : {}) };
  }
  return self;
}

/** The owner record of process `pid` of this host (default: this process). */
export function ownerRecord(pid: number = process.pid): OwnerRecord {
  const startTime = processStartTime(pid);
  return { pid, ...(startTime !== undefined ? { startTime } : {}), ...here() };
}

/**
 * 'gone' when the record's process certainly no longer runs, 'alive' when it does, 'unknown' when
 * this process cannot tell (another host, boot or pid namespace).
 */
export function ownerState(rec: OwnerRecord, isAlive: (pid: number) => boolean = pidAlive): 'alive' | 'gone' | 'unknown' {
  const h = here();
  if (rec.host !== h.host || rec.bootId !== h.bootId || rec.pidNs !== h.pidNs) return 'unknown';
  if (rec.pid !== process.pid && !isAlive(rec.pid)) return 'gone';
  if (rec.startTime !== undefined) {
    const now = processStartTime(rec.pid);
    if (now !== undefined && now !== rec.startTime) return 'gone'; // the pid was reused
  }
  return 'alive';
}

/** The owner record at `path`, or undefined when there is none or it does not parse. */
async function readOwner(path: string): Promise<OwnerRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(path, 'utf8')) as Partial<OwnerRecord>;
    const opt = (v: unknown): boolean => v === undefined || typeof v === 'string';
    if (!Number.isSafeInteger(r.pid) || typeof r.host !== 'string' || !opt(r.startTime) || !opt(r.bootId) || !opt(r.pidNs))
      return undefined;
    return r as OwnerRecord;
  } catch {
    return undefined;
  }
}

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
    const meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as {
      files?: { model?: unknown; data?: unknown; tokenizer?: unknown };
    };
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
  const pattern = new RegExp(`^(\\.${escapeRe(basename(out))}\\.tmp-(\\d+)-[0-9a-f]+)(\\.old|\\.probe|\\${OWNER_SUFFIX})?$`);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return { removed: [] }; // no parent yet: nothing to clean
  }
  // each export's entries share the base name `.<name>.tmp-<pid>-<hex>`: decided together
  const groups = new Map<string, { pid: number; entries: { name: string; suffix: string | undefined }[] }>();
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const g = groups.get(m[1]!) ?? { pid: Number(m[2]), entries: [] };
    g.entries.push({ name, suffix: m[3] });
    groups.set(m[1]!, g);
  }
  const stale: { path: string; old: boolean; record: boolean; mtime: number }[] = [];
  for (const [base, g] of groups) {
    const rec = await readOwner(join(parent, base + OWNER_SUFFIX));
    const owner = rec === undefined ? undefined : ownerState(rec, alive);
    if (owner === 'alive') continue;
    const found: { path: string; old: boolean; record: boolean; mtime: number }[] = [];
    for (const e of g.entries) {
      const path = join(parent, e.name);
      const mtime = await newestMtime(path).catch(() => undefined);
      if (mtime !== undefined) found.push({ path, old: e.suffix === '.old', record: e.suffix === OWNER_SUFFIX, mtime });
    }
    // no record, or one that cannot be checked here: the age rule, on the pid in the name
    if (owner !== 'gone' && (g.pid === process.pid || alive(g.pid) || found.some((f) => Date.now() - f.mtime < minAge))) continue;
    stale.push(...found);
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
  // owner records last: an interrupted clean-up leaves its directories still attributed
  for (const s of [...stale.filter((x) => !x.record), ...stale.filter((x) => x.record)]) {
    if (s.path === result.restored) continue;
    await rm(s.path, { recursive: true, force: true });
    result.removed.push(s.path);
  }
  const dirs = result.removed.filter((p) => !p.endsWith(OWNER_SUFFIX));
  if (dirs.length > 0) {
    opts.onWarning?.(
      `removed ${dirs.length} temporary director${dirs.length === 1 ? 'y' : 'ies'} left by killed exports: ${dirs.map((p) => basename(p)).join(', ')}`,
    );
  }
  return result;
}
