/**
 * Mutation fuzzer for the input readers: safetensors files, torch.save zips, pickles and config.json
 * text. Seeds: the tiny fixture, the presets in models/ and every file of test/corpus. Each iteration
 * mutates a seed (bit flips, interesting bytes and numbers, cuts, inserts, splices, JSON-aware edits)
 * and runs the reader to the end (every tensor read). A crash is any exception other than the
 * reader's own typed error (CheckpointError / ConfigError); a slow case is one over SLOW_MS.
 *
 *   npx tsx test/fuzz/readers.ts [iterations=20000] [seed=1]     prints iterations, crashes, time; exit 1 on a crash
 *
 * test/fuzz.test.ts runs a few thousand iterations of the same loop.
 */
import { open } from 'node:fs/promises';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PyDict, unpickle, type PickleValue } from '../../src/export/checkpoint/pickle.js';
import { openSafetensors } from '../../src/export/checkpoint/safetensors.js';
import { concatBytes } from '../helpers/checkpoint-bytes.js';
import { torchStateDictPickle, writeTorchCheckpoint, type TorchTensorSpec } from '../helpers/torch-checkpoint.js';
import { openTorchCheckpoint } from '../../src/export/checkpoint/torch.js';
import { ZipReader } from '../../src/export/checkpoint/zip.js';
import { CheckpointError, type TensorStore } from '../../src/export/checkpoint/types.js';
import { ConfigError, configFromJson, detectConfigFormat, parseConfigText } from '../../src/export/config.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SLOW_MS = 2000;

export type Target = 'safetensors' | 'torch-zip' | 'torch-pickle' | 'pickle' | 'config';
export interface Crash {
  target: Target;
  iteration: number;
  error: string;
  input: string;
}
export interface TargetStats {
  runs: number;
  accepted: number;
  rejected: number;
  maxMs: number;
}
export interface FuzzResult {
  iterations: number;
  crashes: Crash[];
  slow: Crash[];
  ms: number;
  targets: Record<Target, TargetStats>;
}
export interface FuzzOptions {
  iterations: number;
  seed?: number;
  /** Where crash inputs are saved (default: a fresh temp dir, kept only when something crashed). */
  crashDir?: string;
  /** Stop after this many ms even if iterations remain. */
  maxMs?: number;
  onProgress?: (done: number, result: FuzzResult) => void;
}

/** mulberry32: deterministic per seed. */
export function prng(seed: number): { int: (n: number) => number; pick: <T>(xs: readonly T[]) => T; chance: (p: number) => boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { int, pick: (xs) => xs[int(xs.length)]!, chance: (p) => next() < p };
}
type Rng = ReturnType<typeof prng>;

// ---- seeds ----------------------------------------------------------------------------------------

/** Valid inputs (mutated most often) and the corpus's broken ones, per reader. */
interface Pool<T> {
  valid: T[];
  broken: T[];
}
interface SmallTorch {
  pickle: Uint8Array;
  storages: Record<string, Uint8Array>;
}
interface Seeds {
  safetensors: Pool<Uint8Array>;
  torchZip: Pool<Uint8Array>;
  pickle: Pool<Uint8Array>;
  torchSmall: SmallTorch[];
  config: Pool<string>;
}

/** A seed: a valid one 60% of the time. */
const pickSeed = <T>(rng: Rng, p: Pool<T>): T =>
  p.valid.length > 0 && (p.broken.length === 0 || rng.chance(0.6)) ? rng.pick(p.valid) : rng.pick(p.broken);
const allOf = <T>(p: Pool<T>): T[] => [...p.valid, ...p.broken];

/** Small torch.save state dicts (views, shared storages, parameters, F16) with their storages. */
function smallTorchSeeds(): SmallTorch[] {
  const specs: TorchTensorSpec[][] = [
    [
      { key: 'a', storage: '0', numel: 6, size: [2, 3] },
      { key: 'b', storage: '0', numel: 6, offset: 1, size: [2, 2], stride: [3, 1] },
    ],
    [
      { key: 'h', storage: '0', storageType: 'HalfStorage', numel: 4, size: [4] },
      { key: 't', storage: '1', numel: 3, size: [3, 1], stride: [1, 0] },
    ],
  ];
  const bytes = (t: TorchTensorSpec): Uint8Array => new Uint8Array(t.numel * (t.storageType === 'HalfStorage' ? 2 : 4)).fill(0x3c);
  return specs.flatMap((ts) =>
    [{ ordered: true, metadata: true }, { parameter: true }, {}].map((o) => ({
      pickle: torchStateDictPickle(ts, o),
      storages: Object.fromEntries(ts.map((t) => [t.storage, bytes(t)])),
    })),
  );
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** data.pkl of a torch.save zip, when the zip can be read. */
async function pickleOf(path: string): Promise<Uint8Array | undefined> {
  const fh = await open(path, 'r');
  try {
    const zip = await ZipReader.open(fh, path, (await fh.stat()).size);
    const entry = [...zip.entries.values()].find((e) => e.name.endsWith('/data.pkl'));
    return entry && (await zip.readEntry(entry, 1 << 20));
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

export async function loadSeeds(): Promise<Seeds> {
  const fixture = filesUnder(join(ROOT, 'test/fixtures/tiny-g1'));
  const corpus = filesUnder(join(ROOT, 'test/corpus')).filter((f) => statSync(f).size < 4 << 20);
  const pool = <T>(): Pool<T> => ({ valid: [], broken: [] });
  const seeds: Seeds = { safetensors: pool(), torchZip: pool(), pickle: pool(), torchSmall: smallTorchSeeds(), config: pool() };
  for (const f of [...fixture, ...corpus]) {
    const kind = fixture.includes(f) ? 'valid' : 'broken';
    if (f.endsWith('.safetensors')) seeds.safetensors[kind].push(new Uint8Array(readFileSync(f)));
    else if (f.endsWith('.bin')) {
      seeds.torchZip[kind].push(new Uint8Array(readFileSync(f)));
      const p = await pickleOf(f);
      if (p) seeds.pickle[kind].push(p);
    } else if (f.endsWith('config.json')) seeds.config[kind].push(readFileSync(f, 'utf8'));
  }
  for (const f of filesUnder(join(ROOT, 'models')).filter((x) => x.endsWith('.json'))) {
    seeds.config.valid.push(JSON.stringify((JSON.parse(readFileSync(f, 'utf8')) as { config?: unknown }).config));
  }
  seeds.pickle.valid.push(...seeds.torchSmall.map((t) => t.pickle));
  return seeds;
}

// ---- mutations ------------------------------------------------------------------------------------

const INTERESTING_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x2d, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x2e, 0x28, 0x52, 0x51, 0x63, 0x93,
];
const INTERESTING_NUMBERS = [
  '0',
  '-1',
  '1',
  '255',
  '65536',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '18446744073709551616',
  '1e400',
  '-0',
  '0.5',
  '1e300',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  '"1"',
  '[]',
  '{}',
];

/** 1–8 random byte-level edits of `src` (plus a splice with another seed). */
export function mutateBytes(src: Uint8Array, rng: Rng, others: readonly Uint8Array[]): Uint8Array {
  let b: Uint8Array = new Uint8Array(src); // a copy (Buffer#slice would share the seed's memory)
  const n = rng.chance(0.5) ? 1 : 2 + rng.int(6);
  for (let k = 0; k < n && b.length > 0; k++) {
    // half the edits land in the first 512 bytes, where headers and pickles live
    const at = rng.chance(0.5) ? rng.int(Math.min(b.length, 512)) : rng.int(b.length);
    // weights: flips and byte sets most often, then 8-byte integers, inserts and duplicates, cuts and splices
    switch (rng.pick([0, 0, 0, 1, 1, 6, 6, 3, 4, 2, 5])) {
      case 0:
        b[at]! ^= 1 << rng.int(8);
        break;
      case 1:
        b[at] = rng.pick(INTERESTING_BYTES);
        break;
      case 2:
        b = b.slice(0, at);
        break;
      case 3:
        b = concat(
          b.subarray(0, at),
          Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256)),
          b.subarray(at),
        );
        break;
      case 4: {
        const len = 1 + rng.int(Math.min(64, b.length - at));
        b = concat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
        break;
      }
      case 5: {
        if (others.length === 0) break;
        const o = rng.pick(others);
        const from = rng.int(o.length);
        b = concat(b.subarray(0, at), o.subarray(from, from + 1 + rng.int(256)));
        break;
      }
      default: {
        // an interesting 8-byte little-endian integer (length fields, zip sizes)
        const v = rng.pick([0n, 1n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(b.length)]);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (at + 8 <= b.length) dv.setBigUint64(at, v, true);
      }
    }
  }
  return b;
}

const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

/** Replaces a random number / string token of JSON text with an interesting one. */
function mutateJsonText(text: string, rng: Rng): string {
  const tokens = [...text.matchAll(/-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"[^"\\]*"|true|false|null|Infinity|NaN/g)];
  if (tokens.length === 0) return text;
  let out = text;
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const t = rng.pick(tokens);
    const at = t.index;
    if (out.slice(at, at + t[0].length) !== t[0]) continue;
    out = out.slice(0, at) + rng.pick(INTERESTING_NUMBERS) + out.slice(at + t[0].length);
  }
  return out;
}

function mutateSafetensorsHeader(src: Uint8Array, rng: Rng): Uint8Array {
  if (src.length < 8) return src;
  const len = Number(new DataView(src.buffer, src.byteOffset).getBigUint64(0, true));
  if (len > src.length - 8) return src;
  const json = mutateJsonText(new TextDecoder().decode(src.subarray(8, 8 + len)), rng);
  const h = new TextEncoder().encode(json);
  const lenField = new Uint8Array(8);
  new DataView(lenField.buffer).setBigUint64(0, BigInt(h.length), true);
  return concat(lenField, h, src.subarray(8 + len));
}

// ---- targets --------------------------------------------------------------------------------------

const PICKLE_OPTS = {
  path: 'fuzz.pkl',
  what: 'data.pkl',
  globals: new Map([
    ['collections.OrderedDict', (): PickleValue => new PyDict()],
    ['torch.FloatStorage', undefined],
    ['torch._utils._rebuild_tensor_v2', (): PickleValue => null],
  ]),
  persistentLoad: (pid: PickleValue): PickleValue => pid,
};

async function readAll(store: TensorStore): Promise<void> {
  try {
    for (const k of store.keys()) {
      try {
        await store.readFloat32(k);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
      }
    }
  } finally {
    await store.close();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const rng = prng(opts.seed ?? 1);
  const seeds = await loadSeeds();
  const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'm2o-fuzz-'));
  const crashDir = opts.crashDir ?? join(tmpdir(), `m2o-fuzz-crashes-${process.pid}`);
  const blank = (): TargetStats => ({ runs: 0, accepted: 0, rejected: 0, maxMs: 0 });
  const result: FuzzResult = {
    iterations: 0,
    crashes: [],
    slow: [],
    ms: 0,
    targets: { safetensors: blank(), 'torch-zip': blank(), 'torch-pickle': blank(), pickle: blank(), config: blank() },
  };
  const plan: Target[] = ['pickle', 'pickle', 'pickle', 'safetensors', 'safetensors', 'config', 'config', 'torch-zip', 'torch-pickle'];
  const t0 = performance.now();
  const file = join(work, 'input');
  try {
    for (let i = 0; i < opts.iterations; i++) {
      if (opts.maxMs !== undefined && performance.now() - t0 > opts.maxMs) break;
      const target = rng.pick(plan);
      let input: Uint8Array;
      let run: () => unknown;
      let typed: typeof CheckpointError | typeof ConfigError = CheckpointError;
      if (target === 'safetensors') {
        const src = pickSeed(rng, seeds.safetensors);
        input = rng.chance(0.3) ? mutateSafetensorsHeader(src, rng) : mutateBytes(src, rng, allOf(seeds.safetensors));
        run = async () => {
          writeFileSync(file, input);
          await readAll(await openSafetensors(file));
        };
      } else if (target === 'torch-zip') {
        input = mutateBytes(pickSeed(rng, seeds.torchZip), rng, allOf(seeds.torchZip));
        run = async () => {
          writeFileSync(file, input);
          await readAll(await openTorchCheckpoint(file));
        };
      } else if (target === 'torch-pickle') {
        const src = rng.pick(seeds.torchSmall);
        input = mutateBytes(
          src.pickle,
          rng,
          seeds.torchSmall.map((t) => t.pickle),
        );
        run = async () => {
          await writeTorchCheckpoint(file, { tensors: [], storages: src.storages, pickle: input });
          await readAll(await openTorchCheckpoint(file));
        };
      } else if (target === 'pickle') {
        input = mutateBytes(pickSeed(rng, seeds.pickle), rng, allOf(seeds.pickle));
        run = () => unpickle(input, PICKLE_OPTS);
      } else {
        typed = ConfigError;
        const src = pickSeed(rng, seeds.config);
        const text = rng.chance(0.5)
          ? mutateJsonText(src, rng)
          : new TextDecoder().decode(mutateBytes(new TextEncoder().encode(src), rng, []));
        input = new TextEncoder().encode(text);
        run = () => {
          const raw = parseConfigText(text, 'config.json');
          return configFromJson(raw, detectConfigFormat(raw), 'config.json');
        };
      }
      const stats = result.targets[target];
      const start = performance.now();
      let crash: string | undefined;
      try {
        await run();
        stats.accepted++;
      } catch (e) {
        if (e instanceof typed) stats.rejected++;
        else crash = (e as Error).stack ?? String(e);
      }
      const ms = performance.now() - start;
      stats.runs++;
      stats.maxMs = Math.max(stats.maxMs, ms);
      result.iterations++;
      if (crash !== undefined || ms > SLOW_MS) {
        mkdirSync(crashDir, { recursive: true });
        const saved = join(crashDir, `${crash ? 'crash' : 'slow'}-${target}-${i}`);
        writeFileSync(saved, input);
        (crash ? result.crashes : result.slow).push({ target, iteration: i, error: crash ?? `${ms.toFixed(0)} ms`, input: saved });
      }
      if (opts.onProgress && (i + 1) % 10_000 === 0) opts.onProgress(i + 1, result);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    result.ms = performance.now() - t0;
  }
  return result;
}

export function formatResult(r: FuzzResult): string {
  const rate = (r.iterations / (r.ms / 1000)).toFixed(0);
  const lines = [
    `fuzz: ${r.iterations} iterations, ${r.crashes.length} crashes, ${r.slow.length} slow (> ${SLOW_MS} ms), ${(r.ms / 1000).toFixed(1)} s (${rate}/s)`,
  ];
  for (const [t, s] of Object.entries(r.targets)) {
    lines.push(
      `  ${t.padEnd(12)} ${String(s.runs).padStart(8)} runs  ${String(s.rejected).padStart(8)} typed errors  ${String(s.accepted).padStart(7)} accepted  max ${s.maxMs.toFixed(1)} ms`,
    );
  }
  for (const c of [...r.crashes, ...r.slow].slice(0, 10))
    lines.push(`  ${c.target} #${c.iteration}: ${c.error.split('\n')[0]} (input: ${c.input})`);
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const iterations = Number(process.argv[2] ?? 20_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || !Number.isSafeInteger(seed)) {
    process.stderr.write(`usage: npx tsx test/fuzz/readers.ts [iterations ≥ 1] [seed], got ${process.argv.slice(2).join(' ')}\n`);
    process.exit(2);
  }
  const r = await runFuzz({
    iterations,
    seed,
    onProgress: (n, res) => process.stderr.write(`  ${n} iterations, ${res.crashes.length} crashes\n`),
  });
  process.stdout.write(`${formatResult(r)}\n`);
  process.exitCode = r.crashes.length > 0 ? 1 : 0;
}
