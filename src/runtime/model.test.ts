/**
 * Mamba2Model on a real onnxruntime-node session over the toy model (test/helpers/toy-model.ts):
 * state handling, generation controls and argument errors. The exporter's real graphs are
 * exercised by test/e2e/generate.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EpUnavailableError } from './backend.js';
import { Mamba2Model } from './model.js';
import { writeToyModelDir } from '../../test/helpers/toy-model.js';
import { toyWordLevel } from '../../test/helpers/tiny-tokenizers.js';

const root = mkdtempSync(join(tmpdir(), 'm2-runtime-'));
const plain = join(root, 'toy');
const withTok = join(root, 'toy-tok');
writeToyModelDir(plain);
writeToyModelDir(withTok, { tokenizer: toyWordLevel() });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const close = (a: Float32Array, b: Float32Array, tol = 1e-5): void => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  expect(worst).toBeLessThanOrEqual(tol);
};

describe('Mamba2Model on the CPU EP', () => {
  let m: Mamba2Model;
  let t: Mamba2Model;
  beforeAll(async () => {
    m = await Mamba2Model.load(plain, { ep: 'cpu' });
    t = await Mamba2Model.load(withTok, { ep: 'cpu' });
  });
  afterAll(async () => {
    await m.release();
    await t.release();
  });

  it('loads meta, specs and reports the EP', () => {
    expect(m.ep).toBe('cpu');
    expect(m.fallbacks).toEqual([]);
    expect(m.deviceState).toBe(false);
    expect(m.specs.map((s) => s.input)).toEqual(['past_conv.0', 'past_ssm.0']);
    expect(m.tokenizer).toBeUndefined();
    expect(t.tokenizer?.eosTokenId).toBe(5);
  });

  it('prefill N then k single steps equals one prefill of N + k (last-position logits)', async () => {
    const ids = [1, 4, 2, 0, 3, 1, 2];
    const full = await m.forward([ids]);
    let r = await m.forward([ids.slice(0, 4)]);
    for (const id of ids.slice(4)) r = await m.forward([[id]], r.state);
    close(r.logits.at(0), full.logits.at(0, -1));
    expect(full.logits.dims).toEqual([1, 7, 8]);
  });

  it('forward leaves the input state usable (prefix reuse)', async () => {
    const p = await m.forward([[1, 2, 3]]);
    const a = await m.forward([[4]], p.state);
    const b = await m.forward([[4]], p.state);
    close(a.logits.at(0), b.logits.at(0), 0);
  });

  it('batch 2 equals each row on its own; BigInt64Array and {data, dims} inputs', async () => {
    const both = await m.forward([
      [1, 2, 3],
      [3, 0, 4],
    ]);
    const r0 = await m.forward([1, 2, 3]);
    const r1 = await m.forward(BigInt64Array.of(3n, 0n, 4n));
    close(both.logits.at(0), r0.logits.at(0));
    close(both.logits.at(1), r1.logits.at(0));
    const viaDims = await m.forward({ data: BigInt64Array.of(1n, 2n, 3n, 3n, 0n, 4n), dims: [2, 3] });
    close(viaDims.logits.at(1, 1), both.logits.at(1, 1), 0);
    expect(both.state.batch).toBe(2);
  });

  it('saves and restores a state through bytes', async () => {
    const p = await m.forward([[1, 2, 3, 4]]);
    const bytes = await m.saveState(p.state);
    const restored = m.loadState(bytes);
    close((await m.forward([[2]], restored)).logits.at(0), (await m.forward([[2]], p.state)).logits.at(0), 0);
    const bad = bytes.slice();
    bad[bad.length - 10]! ^= 1;
    expect(() => m.loadState(bad)).toThrow(/checksum mismatch/);
  });

  it('greedy generation is deterministic and never picks padded rows', async () => {
    const a = await m.generate([1, 2], { maxNewTokens: 12 });
    const b = await m.generate([1, 2], { maxNewTokens: 12 });
    expect(a.outputIds).toEqual(b.outputIds);
    expect(a.outputIds.length).toBeGreaterThan(0);
    expect(a.outputIds.every((id) => id < 6)).toBe(true); // ids 6, 7 have logits +50 but are padding
    expect(a.promptIds).toEqual([1, 2]);
    expect(a.prefillTokens).toBe(2);
    expect(a.text).toBe('');
  });

  it('greedy ids equal the argmax of a full forward over the sequence so far', async () => {
    const r = await m.generate([3, 1], { maxNewTokens: 6, minNewTokens: 6 });
    const seq = [3, 1];
    for (const id of r.outputIds) {
      const row = (await m.forward([seq])).logits.at(0, -1).slice(0, 5); // ids < realVocab, EOS (5) suppressed
      expect(id).toBe(row.indexOf(Math.max(...row)));
      seq.push(id);
    }
  });

  it('same seed → same sampled tokens; the seed is reported', async () => {
    const opts = { maxNewTokens: 16, temperature: 1.5, topK: 4, topP: 0.95, minNewTokens: 16 };
    const a = await m.generate([0], { ...opts, seed: 7 });
    const b = await m.generate([0], { ...opts, seed: 7 });
    expect(a.outputIds).toEqual(b.outputIds);
    expect(a.seed).toBe(7);
    const c = await m.generate([0], opts);
    const d = await m.generate([0], { ...opts, seed: c.seed });
    expect(d.outputIds).toEqual(c.outputIds);
  });

  it('prefillWindow gives the same tokens as one prefill', async () => {
    const prompt = [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1];
    const one = await m.generate(prompt, { maxNewTokens: 5 });
    for (const w of [1, 3, 4, 100])
      expect((await m.generate(prompt, { maxNewTokens: 5, prefillWindow: w })).outputIds).toEqual(one.outputIds);
  });

  it('continues from opts.state without disposing it', async () => {
    const p = await m.forward([[1, 2]]);
    const cont = await m.generate([3], { maxNewTokens: 4, state: p.state });
    expect(cont.outputIds).toEqual((await m.generate([1, 2, 3], { maxNewTokens: 4 })).outputIds);
    expect(p.state.disposed).toBe(false);
  });

  it('stops at EOS and at extra stop ids; minNewTokens suppresses them', async () => {
    const free = await m.generate([1], { maxNewTokens: 10, minNewTokens: 10 });
    const stopAt = free.outputIds[3]!;
    const r = await m.generate([1], { maxNewTokens: 10, minNewTokens: 0, stopTokenIds: [stopAt] });
    expect(r.finishReason).toBe('stop_token');
    expect(r.outputIds[r.outputIds.length - 1]).toBe(stopAt);
    expect(r.outputIds.length).toBeLessThanOrEqual(4);
    expect((await m.generate([1], { maxNewTokens: 3 })).finishReason).toMatch(/length|stop_token/);
    expect((await m.generate([1], { maxNewTokens: 0 })).outputIds).toEqual([]);
  });

  it('forward into a spare state writes the new state into its buffers, with the same results', async () => {
    const a = await m.forward([[1, 4, 2]]);
    const b = await m.forward([[3]], a.state); // b.state will be the spare
    const spareBufs = b.state.tensors.map((t) => t.data);
    const want = await m.forward([[0]], a.state);
    const got = await m.forward([[0]], a.state, { into: b.state });
    expect(b.state.disposed).toBe(true); // consumed
    close(got.logits.at(0, -1), want.logits.at(0, -1), 0);
    got.state.tensors.forEach((t, i) => {
      expect(t.data).toBe(spareBufs[i]); // written in place, no new allocation
      close(t.data as Float32Array, want.state.tensors[i]!.data as Float32Array, 0);
    });
    // a spare that does not fit (other batch) is just disposed
    const two = await m.forward([[1], [2]]);
    const r = await m.forward([[5]], a.state, { into: two.state });
    expect(two.state.disposed).toBe(true);
    close(r.logits.at(0, -1), (await m.forward([[5]], a.state)).logits.at(0, -1), 0);
    // batch 2: in place is off (slower there), a fitting spare is consumed and the results are the same
    expect(m.writesStateInPlace(1)).toBe(true);
    expect(m.writesStateInPlace(2)).toBe(false);
    const spare2 = await m.forward([[1], [2]]);
    const bufs2 = spare2.state.tensors.map((t) => t.data);
    const r2 = await m.forward([[3], [4]], (await m.forward([[1], [2]])).state, { into: spare2.state });
    expect(spare2.state.disposed).toBe(true);
    r2.state.tensors.forEach((t, i) => expect(t.data).not.toBe(bufs2[i]));
    await expect(m.forward([[5]], a.state, { into: a.state })).rejects.toThrow(
      /opts\.into: expected a Mamba2State other than `state`, got the same state/,
    );
  });

  it("memory: 'lean' (no prepacking, no arena) computes the same logits", async () => {
    const lean = await Mamba2Model.load(plain, { ep: 'cpu', memory: 'lean' });
    const ids = [1, 4, 2, 0, 3, 1, 2];
    const a = await lean.forward([ids]);
    const b = await m.forward([ids]);
    close(a.logits.at(0, -1), b.logits.at(0, -1), 1e-6);
    close((await lean.forward([[3]], a.state)).logits.at(0), (await m.forward([[3]], b.state)).logits.at(0), 1e-6);
    await lean.release();
    await expect(Mamba2Model.load(plain, { ep: 'cpu', memory: 'small' as 'lean' })).rejects.toThrow(
      /opts\.memory: expected 'fast' or 'lean', got/,
    );
  });

  it('generateBatch: unequal prompts give the same tokens as one at a time', async () => {
    const prompts = [[1], [2, 3, 4], [0, 1]];
    const batch = await m.generateBatch(prompts, { maxNewTokens: 6, minNewTokens: 6 });
    for (const [i, p] of prompts.entries())
      expect(batch[i]!.outputIds).toEqual((await m.generate(p, { maxNewTokens: 6, minNewTokens: 6 })).outputIds);
    const same = await m.generateBatch(
      [
        [1, 2],
        [2, 1],
      ],
      { maxNewTokens: 6, minNewTokens: 6 },
    );
    expect(same[1]!.outputIds).toEqual((await m.generate([2, 1], { maxNewTokens: 6, minNewTokens: 6 })).outputIds);
    expect(same[0]!.decodeTokens).toBe(5 * 2);
  });

  it('text prompts, streaming text and stop strings through the tokenizer', async () => {
    const full = await t.generate('ab cd', { maxNewTokens: 8, minNewTokens: 8 });
    expect(full.promptIds).toEqual([0, 1]);
    expect(full.text).toBe(t.tokenizer!.decode(full.outputIds).replace(/^/, ' '));
    const chunks: string[] = [];
    const it2 = t.stream('ab cd', { maxNewTokens: 8, minNewTokens: 8 });
    for await (const ch of it2) chunks.push(ch.text);
    expect(chunks.join('')).toBe(full.text);
    // A stop string spanning the end of one word and the start of the next.
    const words = full.text.trim().split(' ');
    const stop = `${words[1]!.slice(1)} ${words[2]!.slice(0, 1)}`;
    const cut = await t.generate('ab cd', { maxNewTokens: 8, minNewTokens: 8, stopStrings: [stop] });
    expect(cut.finishReason).toBe('stop_string');
    expect(cut.text).toBe(` ${words[0]} ${words[1]!.slice(0, 1)}`);
    expect(cut.outputIds).toEqual(full.outputIds.slice(0, 3));
  });

  it('stream can be cancelled with an AbortSignal', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const run = async (): Promise<void> => {
      for await (const ch of m.stream([1], { maxNewTokens: 50, minNewTokens: 50, signal: ac.signal })) {
        seen.push(ch.tokenId);
        if (seen.length === 3) ac.abort(new Error('user cancelled'));
      }
    };
    await expect(run()).rejects.toThrow('user cancelled');
    expect(seen).toHaveLength(3);
    const pre = new AbortController();
    pre.abort();
    await expect(m.generate([1], { signal: pre.signal })).rejects.toThrow(/abort/i);
  });

  it('breaking out of a stream ends it cleanly', async () => {
    let n = 0;
    for await (const _ of m.stream([1], { maxNewTokens: 50 })) if (++n === 2) break;
    expect(n).toBe(2);
    expect((await m.generate([1], { maxNewTokens: 2 })).outputIds.length).toBeGreaterThan(0);
  });
});

describe('bad input → clear errors', () => {
  let m: Mamba2Model;
  beforeAll(async () => {
    m = await Mamba2Model.load(plain);
  });
  afterAll(() => m.release());

  it('prompts and ids', async () => {
    await expect(m.generate([])).rejects.toThrow(new RangeError('prompt: expected at least one token id, got an empty array'));
    await expect(m.generate('')).rejects.toThrow(RangeError);
    await expect(m.generate('hello')).rejects.toThrow(/no tokenizer\.json, so it accepts token ids only/);
    await expect(m.generate([1, 6])).rejects.toThrow('prompt[1]: token id out of vocab, expected an integer in [0, 6), got 6');
    await expect(m.generate([1, -1])).rejects.toThrow(RangeError);
    await expect(m.generate([1.5])).rejects.toThrow(RangeError);
    await expect(m.generate(['a'] as unknown as number[])).rejects.toThrow(TypeError);
    await expect(m.generate(42 as unknown as number[])).rejects.toThrow(
      /prompt: expected a string or an array of token ids, got number 42/,
    );
    await expect(m.forward([[1, 8]])).rejects.toThrow('ids[0][1]: token id out of vocab, expected an integer in [0, 8), got 8');
    await expect(m.forward([[1, 2], [3]])).rejects.toThrow(/rows must have equal length/);
    await expect(m.forward([])).rejects.toThrow(RangeError);
    await expect(m.generateBatch([])).rejects.toThrow(RangeError);
    await expect(m.generateBatch([[1], [9]])).rejects.toThrow(/prompts\[1\]\[0\]: token id out of vocab/);
  });

  it('options', async () => {
    await expect(m.generate([1], { maxNewTokens: -1 })).rejects.toThrow('opts.maxNewTokens: expected an integer ≥ 0, got -1');
    await expect(m.generate([1], { maxNewTokens: 2.5 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { maxNewTokens: '5' as unknown as number })).rejects.toThrow(
      /opts\.maxNewTokens: expected a number .* got the string "5"/,
    );
    await expect(m.generate([1], { temperature: -1 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { topP: 0 })).rejects.toThrow(/opts\.topP: expected a number in \(0, 1\]/);
    await expect(m.generate([1], { topK: -3 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { repetitionPenalty: 0 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { seed: -1 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { prefillWindow: 0 })).rejects.toThrow(RangeError);
    await expect(m.generate([1], { stopTokenIds: [99] })).rejects.toThrow('opts.stopTokenIds[0]: expected an integer in [0, 8), got 99');
    await expect(m.generate([1], { stopStrings: ['x'] })).rejects.toThrow(/no tokenizer/);
    await expect(m.generate([1], { maxTokens: 5 } as unknown as object)).rejects.toThrow(/opts\.maxTokens: unknown option/);
    await expect(m.generate([1], { signal: {} as AbortSignal })).rejects.toThrow(TypeError);
  });

  it('states', async () => {
    const two = m.zeroState(2);
    await expect(m.forward([[1]], two)).rejects.toThrow('state: batch expected 1 (rows of ids), got 2');
    await expect(m.generate([1], { state: two })).rejects.toThrow(/opts\.state: batch expected 1/);
    two.dispose();
    await expect(m.forward([[1], [2]], two)).rejects.toThrow(/disposed/);
    await expect(m.forward([[1]], {} as never)).rejects.toThrow(TypeError);
  });

  it('execution providers', async () => {
    await expect(Mamba2Model.load(plain, { ep: 'tpu' })).rejects.toThrow(
      "opts.ep: unknown execution provider 'tpu', expected one of cpu, webgpu, cuda",
    );
    await expect(Mamba2Model.load(plain, { ep: '' })).rejects.toThrow(RangeError);
    await expect(Mamba2Model.load(plain, { ep: 3 as unknown as string })).rejects.toThrow(TypeError);
    let cuda: Mamba2Model | undefined;
    try {
      cuda = await Mamba2Model.load(plain, { ep: 'cuda' });
    } catch (e) {
      expect(e).toBeInstanceOf(EpUnavailableError);
      expect((e as Error).message).toMatch(/'cuda' is unavailable: .*--onnxruntime-node-install=cuda12/);
    }
    if (cuda) {
      await cuda.release(); // a machine with the CUDA provider: nothing to check here
      return;
    }
    const fb = await Mamba2Model.load(plain, { ep: 'cuda,cpu' });
    expect(fb.ep).toBe('cpu');
    expect(fb.fallbacks.map((f) => f.ep)).toEqual(['cuda']);
    expect(fb.fallbacks[0]!.reason).toMatch(/CUDA provider/);
    await fb.release();
  });

  it('model directories', async () => {
    await expect(Mamba2Model.load(join(root, 'nope'))).rejects.toThrow(/does not exist/);
    await expect(Mamba2Model.load(42 as unknown as string)).rejects.toThrow(TypeError);
    const dir = join(root, 'broken');
    writeToyModelDir(dir);
    const metaPath = join(dir, 'mamba2-onnx.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    meta.io.inputs[2].shape = ['batch', 1, 1, 9];
    writeFileSync(metaPath, JSON.stringify(meta));
    await expect(Mamba2Model.load(dir)).rejects.toThrow(
      /input 'past_ssm\.0': shape expected \[batch, 1, 1, 9\] \(json\), got \[batch, 1, 1, 8\] \(graph\)/,
    );
    writeFileSync(metaPath, JSON.stringify({ ...meta, format: 'other' }));
    await expect(Mamba2Model.load(dir)).rejects.toThrow(/format expected "mamba2-onnx"/);
    rmSync(join(dir, 'model.onnx'));
    writeFileSync(metaPath, JSON.stringify({ ...meta, io: JSON.parse(readFileSync(join(plain, 'mamba2-onnx.json'), 'utf8')).io }));
    await expect(Mamba2Model.load(dir)).rejects.toThrow(/names the model file model\.onnx, but .* does not exist/);
  });
});

/** WebGPU runs where an adapter exists (lavapipe in CI); states then stay on the device. */
const webgpu = await Mamba2Model.load(plain, { ep: 'webgpu' }).catch((e: unknown) => e as Error);
describe.skipIf(webgpu instanceof Error)('Mamba2Model on the WebGPU EP (device-resident state)', () => {
  const g = webgpu as Mamba2Model;
  afterAll(() => g.release());

  it('keeps states on the device and matches the CPU', async () => {
    expect(g.ep).toBe('webgpu');
    expect(g.deviceState).toBe(true);
    const cpu = await Mamba2Model.load(plain, { ep: 'cpu' });
    const ids = [1, 4, 2, 0, 3];
    let r = await g.forward([ids.slice(0, 2)]);
    expect(r.state.onDevice).toBe(true);
    for (const id of ids.slice(2)) r = await g.forward([[id]], r.state);
    close(r.logits.at(0), (await cpu.forward([ids])).logits.at(0, -1), 1e-4);
    const host = await r.state.toHost();
    const cpuHost = await (await cpu.forward([ids])).state.toHost();
    host.tensors.forEach((t, i) => close(t.data, cpuHost.tensors[i]!.data, 1e-4));
    expect((await g.generate([1, 2], { maxNewTokens: 8 })).outputIds).toEqual((await cpu.generate([1, 2], { maxNewTokens: 8 })).outputIds);
    const restored = g.loadState(await g.saveState(r.state));
    close((await g.forward([[2]], restored)).logits.at(0), (await g.forward([[2]], r.state)).logits.at(0), 0);
    // a host state given as `into` is not written when the outputs stay on the device
    const hostSpare = g.loadState(await g.saveState(r.state));
    const viaSpare = await g.forward([[3]], r.state, { into: hostSpare });
    expect(hostSpare.disposed).toBe(true);
    expect(viaSpare.state.onDevice).toBe(true);
    const h1 = await viaSpare.state.toHost();
    const h2 = await (await g.forward([[3]], r.state)).state.toHost();
    h1.tensors.forEach((t, i) => close(t.data, h2.tensors[i]!.data, 0));
    await cpu.release();
  });
});
if (webgpu instanceof Error) {
  describe('WebGPU EP', () => {
    it.skip(`skipped: no WebGPU adapter here (${webgpu.message.slice(0, 120)})`, () => {});
  });
}
