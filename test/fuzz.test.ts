/**
 * A bounded run of the reader fuzzer (test/fuzz/readers.ts): a few thousand mutated safetensors files,
 * torch.save zips, pickles and config texts, seeded from the fixture and test/corpus. Every input
 * must be read to the end or refused with the reader's typed error; none may take over 2 s.
 * Longer runs: `npx tsx test/fuzz/readers.ts 200000`. FUZZ_SEED / FUZZ_ITERATIONS change this run.
 */
import { describe, expect, it } from 'vitest';
import { formatResult, runFuzz } from './fuzz/readers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 4000);

describe('reader fuzzing', () => {
  it(`${ITERATIONS} mutated inputs: typed errors only, no crash, no slow case`, async () => {
    const r = await runFuzz({ iterations: ITERATIONS, seed: SEED, maxMs: 20_000 });
    expect(r.crashes, formatResult(r)).toEqual([]);
    expect(r.slow, formatResult(r)).toEqual([]);
    expect(r.iterations).toBeGreaterThan(ITERATIONS / 4); // maxMs is only a guard against a very slow machine
    for (const [target, s] of Object.entries(r.targets)) {
      expect(s.runs, target).toBeGreaterThan(0);
      expect(s.rejected, `${target} rejects some mutations`).toBeGreaterThan(0);
      expect(s.accepted, `${target} accepts some mutations (the seeds are reachable)`).toBeGreaterThan(0);
    }
  });
});
