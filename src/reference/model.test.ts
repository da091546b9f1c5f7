import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixtureExists, loadFixture, OWN_FIXTURES, SHARED_FIXTURES, type Fixture } from '../../test/helpers/fixture-loader.js';
import { greedyDecode, mamba2Forward, type LayerState } from './model.js';
import { maxAbsDiff, sliceAxis1, tensor, type Tensor } from './tensor.js';

const TOL = 1e-4;

function fromNested(nested: unknown): Tensor<Float64Array> {
  const shape: number[] = [];
  let v: unknown = nested;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return tensor(Float64Array.from((nested as unknown[]).flat(Infinity) as number[]), shape);
}

function expectClose(got: Tensor, want: Tensor, what: string, tol = TOL): void {
  expect(got.shape, `${what}: shape`).toEqual(want.shape);
  const d = maxAbsDiff(got, want);
  expect(d.max, `${what}: max |Δ| ${d.max.toExponential(2)} at [${d.at.join(', ')}]`).toBeLessThanOrEqual(tol);
}

function expectStatesClose(got: readonly LayerState[], want: readonly LayerState[], what: string, tol = 1e-9): void {
  expect(got.length).toBe(want.length);
  got.forEach((s, i) => {
    expectClose(s.conv, want[i]!.conv, `${what} layer ${i} conv`, tol);
    expectClose(s.ssm, want[i]!.ssm, `${what} layer ${i} ssm`, tol);
  });
}

const FIXTURES: { name: string; dir: string; own: boolean }[] = [
  { name: 'shared hf-tiny-untied', dir: join(SHARED_FIXTURES, 'hf-tiny-untied'), own: false },
  { name: 'shared hf-small-g2', dir: join(SHARED_FIXTURES, 'hf-small-g2'), own: false },
  { name: 'own tiny-g1', dir: join(OWN_FIXTURES, 'tiny-g1'), own: true },
  { name: 'own small-g2', dir: join(OWN_FIXTURES, 'small-g2'), own: true },
  { name: 'own clamp-pad', dir: join(OWN_FIXTURES, 'clamp-pad'), own: true },
];

for (const f of FIXTURES) {
  const present = fixtureExists(f.dir);
  if (!present) {
    console.warn(`skipping reference-model tests on ${f.name}: ${f.dir} not found`);
  }
  describe.skipIf(!present)(`reference Mamba-2 vs HF transformers: ${f.name}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      fx = await loadFixture(f.dir);
    });

    it('reproduces every case’s logits within 1e-4', () => {
      for (const c of fx.reference.cases) {
        const { logits } = mamba2Forward(fx.config, fx.weights, c.input_ids);
        expectClose(logits, fromNested(c.logits), `case [${c.input_ids.length}, ${c.input_ids[0]!.length}]`);
      }
    });

    it('reproduces the greedy ids, decoding one token at a time through the states', () => {
      const g = fx.reference.greedy;
      const prompt = g.input_ids[0]!;
      const want = g.output_ids[0]!;
      const got = greedyDecode(fx.config, fx.weights, prompt, want.length - prompt.length, {
        excludeId: g.eos_token_id,
        vocabLimit: g.real_vocab_size ?? fx.config.vocabSize,
      });
      expect(got).toEqual(want);
    });

    it.skipIf(!f.own)('reproduces HF’s final conv and ssm states of case 0', () => {
      const fs = fx.reference.final_states!;
      const c = fx.reference.cases[fs.case_index]!;
      const { states } = mamba2Forward(fx.config, fx.weights, c.input_ids);
      expect(states.length).toBe(fs.conv_state.length);
      states.forEach((s, i) => {
        expectClose(s.conv, fromNested(fs.conv_state[i]), `layer ${i} conv_state`);
        expectClose(s.ssm, fromNested(fs.ssm_state[i]), `layer ${i} ssm_state`);
      });
    });

    it('prefill of 37 tokens = 20 + 17 continued through the states = token by token', () => {
      const ids = fx.reference.cases[0]!.input_ids; // [1][37]
      const full = mamba2Forward(fx.config, fx.weights, ids);
      const a = mamba2Forward(fx.config, fx.weights, [ids[0]!.slice(0, 20)]);
      const b = mamba2Forward(fx.config, fx.weights, [ids[0]!.slice(20)], a.states);
      expectClose(a.logits, sliceAxis1(full.logits, 0, 20), 'first 20', 1e-9);
      expectClose(b.logits, sliceAxis1(full.logits, 20, 37), 'last 17', 1e-9);
      expectStatesClose(b.states, full.states, '20+17');
      let states: LayerState[] | undefined;
      for (let t = 0; t < 37; t++) {
        const step = mamba2Forward(fx.config, fx.weights, [[ids[0]![t]!]], states);
        expectClose(step.logits, sliceAxis1(full.logits, t, t + 1), `token ${t}`, 1e-9);
        states = step.states;
      }
      expectStatesClose(states!, full.states, 'token by token');
    });
  });
}

const ownSmall = join(OWN_FIXTURES, 'small-g2');
const ownClamp = join(OWN_FIXTURES, 'clamp-pad');
describe.skipIf(!fixtureExists(ownSmall) || !fixtureExists(ownClamp))('mamba_ssm checkpoints of the own fixtures', () => {
  it('give the same logits as the HF checkpoints (shared lm_head storage, padded vocab)', async () => {
    for (const dir of [ownSmall, ownClamp]) {
      const hf = await loadFixture(dir, 'hf');
      const ms = await loadFixture(dir, 'mamba_ssm');
      expect(ms.weights['backbone.embedding.weight']).toBeDefined();
      const ids = hf.reference.cases[1]!.input_ids;
      const want = mamba2Forward(hf.config, hf.weights, ids).logits;
      expectClose(mamba2Forward(ms.config, ms.weights, ids).logits, want, `${dir} mamba_ssm`, 0);
    }
  });
});
