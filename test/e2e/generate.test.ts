/**
 * End to end: models written by the exporter (src/export/index.ts), run by the runtime on every
 * EP this machine has (cpu always; webgpu where an adapter exists, e.g. lavapipe in CI).
 *
 * - the `tiny` preset with random weights: chunked prefill vs single steps, determinism, batch,
 *   streaming and cancellation;
 * - the shared HF fixtures (both Mamba-2 ones, both checkpoint formats): greedy ids equal HF's.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EpName } from '../../src/runtime/backend.js';
import { exportModel } from '../../src/export/index.js';
import { Mamba2Model } from '../../src/runtime/model.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, '../../../shared/fixtures');
const hasFixtures = existsSync(join(FIXTURES, 'README.md'));

const root = mkdtempSync(join(tmpdir(), 'm2-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** EPs to test: cpu, plus webgpu when a session can be created on it. */
async function availableEps(dir: string): Promise<{ eps: EpName[]; why: string }> {
  try {
    const m = await Mamba2Model.load(dir, { ep: 'webgpu' });
    await m.release();
    return { eps: ['cpu', 'webgpu'], why: '' };
  } catch (e) {
    return { eps: ['cpu'], why: (e as Error).message.slice(0, 120) };
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const tinyDir = join(root, 'tiny');
const setup = await exportModel({ preset: 'tiny', randomWeights: true, seed: 1 }, { outDir: tinyDir }).then(() => availableEps(tinyDir));
if (setup.eps.length === 1) {
  describe('WebGPU end to end', () => {
    it.skip(`skipped: no WebGPU adapter here (${setup.why})`, () => {});
  });
}

describe.each(setup.eps)('tiny preset, random weights, on %s', (ep) => {
  let m: Mamba2Model;
  const tol = ep === 'cpu' ? 1e-4 : 1e-3;
  beforeAll(async () => {
    m = await Mamba2Model.load(tinyDir, { ep });
  });
  afterAll(() => m.release());

  it('runs where asked, states on the device for webgpu', () => {
    expect(m.ep).toBe(ep);
    expect(m.deviceState).toBe(ep === 'webgpu');
    expect(m.specs).toHaveLength(2 * m.config.nLayer);
  });

  it('prefill N then decode k equals one prefill of N + k (last-position logits), across chunk boundaries', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % m.config.realVocabSize);
    for (const [n, k] of [
      [15, 3],
      [16, 5],
      [33, 7],
    ] as const) {
      const full = await m.forward([ids.slice(0, n + k)]);
      let r = await m.forward([ids.slice(0, n)]);
      for (const id of ids.slice(n, n + k)) {
        const next = await m.forward([[id]], r.state);
        r.state.dispose();
        r = next;
      }
      expect(maxDiff(r.logits.at(0), full.logits.at(0, -1))).toBeLessThanOrEqual(tol);
    }
  });

  it('every position of a prefill equals token-by-token decoding from an empty state', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => (i * 13 + 5) % m.config.realVocabSize);
    const full = await m.forward([ids]);
    let state = m.zeroState(1);
    for (const [t, id] of ids.entries()) {
      const r = await m.forward([[id]], state);
      state.dispose();
      state = r.state;
      expect(maxDiff(r.logits.at(0), full.logits.at(0, t))).toBeLessThanOrEqual(tol);
    }
  });

  it('prefill in windows continuing the state equals one prefill', async () => {
    const ids = Array.from({ length: 37 }, (_, i) => (i * 29 + 3) % m.config.realVocabSize);
    const one = await m.generate(ids, { maxNewTokens: 6 });
    for (const w of [7, 16]) expect((await m.generate(ids, { maxNewTokens: 6, prefillWindow: w })).outputIds).toEqual(one.outputIds);
  });

  it('greedy generation is deterministic; seeded sampling repeats', async () => {
    const a = await m.generate([1, 2, 3, 4, 5], { maxNewTokens: 12, minNewTokens: 12 });
    const b = await m.generate([1, 2, 3, 4, 5], { maxNewTokens: 12, minNewTokens: 12 });
    expect(a.outputIds).toEqual(b.outputIds);
    expect(a.outputIds).toHaveLength(12);
    const s = { maxNewTokens: 12, temperature: 0.9, topK: 40, topP: 0.9, seed: 1234 };
    expect((await m.generate([7, 8], s)).outputIds).toEqual((await m.generate([7, 8], s)).outputIds);
    expect(a.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(a.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('batch 2 equals each row alone (forward and generation)', async () => {
    const rows = [
      [5, 6, 7, 8, 9, 10],
      [100, 3, 200, 4, 50, 60],
    ];
    const both = await m.forward(rows);
    for (const [b, row] of rows.entries()) {
      const one = await m.forward([row]);
      for (const t of [0, 5]) expect(maxDiff(both.logits.at(b, t), one.logits.at(0, t))).toBeLessThanOrEqual(tol);
    }
    const prompts = [
      [1, 2, 3],
      [9, 8, 7, 6, 5],
    ];
    const batch = await m.generateBatch(prompts, { maxNewTokens: 8, minNewTokens: 8 });
    for (const [i, p] of prompts.entries())
      expect(batch[i]!.outputIds).toEqual((await m.generate(p, { maxNewTokens: 8, minNewTokens: 8 })).outputIds);
  });

  it('state saved to bytes continues like the original', async () => {
    const p = await m.forward([[3, 1, 4, 1, 5, 9, 2, 6]]);
    const restored = m.loadState(await m.saveState(p.state));
    const a = await m.generate([5], { maxNewTokens: 6, state: p.state });
    const b = await m.generate([5], { maxNewTokens: 6, state: restored });
    expect(b.outputIds).toEqual(a.outputIds);
  });

  it('streams tokens and stops when aborted', async () => {
    const want = (await m.generate([1, 2, 3], { maxNewTokens: 10, minNewTokens: 10 })).outputIds;
    const got: number[] = [];
    for await (const ch of m.stream([1, 2, 3], { maxNewTokens: 10, minNewTokens: 10 })) {
      expect(ch.index).toBe(got.length);
      got.push(ch.tokenId);
    }
    expect(got).toEqual(want);
    const ac = new AbortController();
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const ch of m.stream([1, 2, 3], { maxNewTokens: 100, minNewTokens: 100, signal: ac.signal })) {
          seen.push(ch.tokenId);
          if (seen.length === 4) ac.abort();
        }
      })(),
    ).rejects.toThrow(/abort/i);
    expect(seen).toEqual(want.slice(0, 4));
  });
});

interface Greedy {
  input_ids: number[][];
  output_ids: number[][];
  eos_token_id: number;
}

/** The project's own fixtures always; ../shared's when present (an independent cross-check). */
const OWN = join(here, '../../test/fixtures');
const fixtureCases = [
  ...['tiny-g1', 'small-g2', 'clamp-pad'].map((f) => join(OWN, f)),
  ...(hasFixtures ? ['hf-tiny-untied', 'hf-small-g2'].map((f) => join(FIXTURES, f)) : []),
].flatMap((d) => ['hf', 'mamba_ssm'].map((fmt) => [d, fmt] as const));
if (!hasFixtures) {
  describe('shared HF fixtures', () => {
    it.skip(`skipped: ${FIXTURES} is absent (the project's own fixtures still run)`, () => {});
  });
}

describe.each(fixtureCases)('fixture %s (%s checkpoint): greedy ids equal HF transformers', (fixtureDir, fmt) => {
  const dir = join(root, `${fixtureDir.replace(/[^A-Za-z0-9]+/g, '-')}-${fmt}`);
  const greedy = (JSON.parse(readFileSync(join(fixtureDir, 'reference.json'), 'utf8')) as { greedy: Greedy }).greedy;
  beforeAll(async () => {
    await exportModel({ checkpointDir: join(fixtureDir, fmt) }, { outDir: dir });
  });

  it.each(setup.eps)('on %s', async (ep) => {
    const m = await Mamba2Model.load(dir, { ep });
    try {
      const prompt = greedy.input_ids[0]!;
      const want = greedy.output_ids[0]!.slice(prompt.length);
      // The fixture's continuation is the argmax with EOS excluded: suppress stop ids for all of it
      // (named explicitly: a mamba_ssm config.json carries no eos id).
      const r = await m.generate(prompt, { maxNewTokens: want.length, minNewTokens: want.length, stopTokenIds: [greedy.eos_token_id] });
      expect(r.outputIds).toEqual(want);
    } finally {
      await m.release();
    }
  });
});
