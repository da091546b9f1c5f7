/**
 * Every entry of the bad-input corpus (test/corpus/manifest.json, written by scripts/make-corpus.ts)
 * gets the error its manifest names, as a typed error (never a TypeError from deep inside), and leaves
 * nothing behind: no output directory, no temporary directory. Model directories are loaded with
 * loadModelSummary and with an onnxruntime-node session, and both must refuse them.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { exportModel } from '../src/export/index.js';
import { loadModelSummary } from '../src/graph/load.js';

interface Entry {
  name: string;
  kind: 'checkpoint' | 'config' | 'model-dir';
  path: string;
  base?: 'hf' | 'mamba_ssm';
  expect: string | null;
  warning?: string;
  expectOrt?: string;
  note: string;
}

const CORPUS = resolve(import.meta.dirname, 'corpus');
const FIXTURE = resolve(import.meta.dirname, 'fixtures/tiny-g1');
const manifest = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8')) as { entries: Entry[] };
const entries = manifest.entries;
const root = mkdtempSync(join(tmpdir(), 'm2o-corpus-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    n += e.isDirectory() ? bytesUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

/** The entry's files, completed with the base fixture's config.json (checkpoint entries) or weights (config entries). */
function assemble(e: Entry): string {
  const dir = join(root, e.name, 'ckpt');
  cpSync(join(CORPUS, e.path), dir, { recursive: true });
  const base = join(FIXTURE, e.base ?? 'hf');
  for (const f of readdirSync(base)) {
    const wanted = e.kind === 'checkpoint' ? f === 'config.json' : f !== 'config.json';
    if (wanted && !existsSync(join(dir, f))) cpSync(join(base, f), join(dir, f));
  }
  return dir;
}

/** The error, checked to be one the project throws on purpose (not a TypeError/ReferenceError from a bug). */
function typed(e: unknown): Error {
  expect(e).toBeInstanceOf(Error);
  expect(e).not.toBeInstanceOf(TypeError);
  expect(e).not.toBeInstanceOf(ReferenceError);
  expect((e as Error).message).not.toMatch(/cannot read properties|is not a function|undefined/i);
  return e as Error;
}

describe('corpus manifest', () => {
  it('lists every entry on disk, once, and the corpus stays under 2 MB', () => {
    const onDisk = ['checkpoint', 'config', 'model-dir'].flatMap((k) => readdirSync(join(CORPUS, k)).map((n) => `${k}/${n}`)).sort();
    expect(entries.map((e) => e.path).sort()).toEqual(onDisk);
    expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length);
    expect(bytesUnder(CORPUS)).toBeLessThan(2 * 2 ** 20);
    for (const e of entries) {
      expect(e.expect === null ? e.warning : e.expect, e.name).toBeTruthy();
      if (e.kind === 'model-dir') expect(e.expectOrt, e.name).toBeTruthy();
    }
  });
});

describe.each(entries.filter((e) => e.kind !== 'model-dir'))('corpus $kind $name', (e) => {
  it(`${e.note}: ${e.expect === null ? 'exports with a warning' : 'refused'}, nothing left behind`, async () => {
    const ckpt = assemble(e);
    const inputs = readdirSync(ckpt).sort();
    const parent = join(root, e.name, 'out');
    mkdirSync(parent);
    const out = join(parent, 'model');
    const warnings: string[] = [];
    const run = exportModel({ checkpointDir: ckpt }, { outDir: out, onWarning: (w) => warnings.push(w) });
    if (e.expect === null) {
      await run;
      expect(warnings.join('\n')).toMatch(new RegExp(e.warning!));
      expect(readdirSync(out)).toContain('model.onnx');
      expect(readdirSync(parent)).toEqual(['model']); // the temporary directory is gone
    } else {
      const err = typed(
        await run.then(
          () => undefined,
          (x: unknown) => x,
        ),
      );
      expect(err.message).toMatch(new RegExp(e.expect));
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(parent)).toEqual([]);
    }
    expect(readdirSync(ckpt).sort()).toEqual(inputs); // nothing written into the checkpoint
    rmSync(join(root, e.name), { recursive: true, force: true });
  });
});

describe.each(entries.filter((e) => e.kind === 'model-dir'))('corpus model-dir $name', (e) => {
  it(`${e.note}: loadModelSummary and onnxruntime-node both refuse it`, async () => {
    const dir = join(CORPUS, e.path);
    const before = readdirSync(dir).sort();
    const summary = typed(
      await loadModelSummary(join(dir, 'model.onnx')).then(
        () => undefined,
        (x: unknown) => x,
      ),
    );
    expect(summary.message).toMatch(new RegExp(e.expect!));
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { logSeverityLevel: 4 }).then(
      async (s) => {
        await s.release();
        return undefined;
      },
      (x: unknown) => x as Error,
    );
    expect(session, 'onnxruntime-node loaded a broken model directory').toBeInstanceOf(Error);
    expect(session!.message).toMatch(new RegExp(e.expectOrt!));
    expect(readdirSync(dir).sort()).toEqual(before); // nothing written beside the model
  });
});
