/**
 * The C-API backend against the onnxruntime-node backend, on the CPU EP, with real ONNX Runtime
 * (no mocks): the tiny preset and a small hybrid, exported with random weights. Same graph
 * metadata, same logits on prefill and through decode steps, same greedy tokens; then the error
 * paths (bad library, broken model, unavailable or unknown EPs, double release, foreign tensors).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../export/index.js';
import { EpUnavailableError, SessionCreateError, type RtTensor } from '../backend.js';
import { Mamba2Model } from '../model.js';
import { nodeBackend } from '../node.js';
import type { Mamba2State } from '../state.js';
import { capiBackend, CapiBackend, summarizeCapiError } from './capi-backend.js';
import { appendProvider, configureSession } from './providers.js';
import { CapiUnavailableError, loadOrt, ORT_LIB_ENV } from './ort-api.js';
import { preferredBackend } from './select.js';
import { CapiTensor } from './tensor.js';

const root = mkdtempSync(join(tmpdir(), 'm2-capi-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tiny = join(root, 'tiny');
const tinyExt = join(root, 'tiny-ext');
const hybrid = join(root, 'hybrid');
const hybridPreset = join(root, 'hybrid.json');
writeFileSync(
  hybridPreset,
  JSON.stringify({
    source: 'none (random weights)',
    format: 'mamba_ssm',
    config: {
      d_model: 32,
      n_layer: 3,
      d_intermediate: 64,
      vocab_size: 64,
      pad_vocab_size_multiple: 16,
      ssm_cfg: { layer: 'Mamba2', d_state: 8, headdim: 16, chunk_size: 8 },
      attn_layer_idx: [1],
      attn_cfg: { causal: true, num_heads: 4, num_heads_kv: 2, rotary_emb_dim: 4, d_conv: 4 },
    },
  }),
);
await exportModel({ preset: 'tiny', randomWeights: true, seed: 1 }, { outDir: tiny });
await exportModel({ preset: 'tiny', randomWeights: true, seed: 1 }, { outDir: tinyExt, externalData: 'always' });
await exportModel({ preset: hybridPreset, randomWeights: true, seed: 11 }, { outDir: hybrid });
const extData = JSON.parse(readFileSync(join(tinyExt, 'mamba2-onnx.json'), 'utf8')).files.data as string | undefined;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function stateDiff(a: Mamba2State, b: Mamba2State): Promise<number> {
  const [ha, hb] = [await a.toHost(), await b.toHost()];
  return Math.max(...ha.tensors.map((t, i) => maxDiff(t.data, hb.tensors[i]!.data)));
}

const ids = (n: number, s: number, v: number): number[] => Array.from({ length: n }, (_, t) => (s * 13 + t * 7) % v);

describe.each([
  ['tiny preset', tiny],
  ['tiny preset, external data (memory-mapped by path)', tinyExt],
  ['hybrid (KV caches from empty)', hybrid],
])('C-API backend vs onnxruntime-node on the CPU: %s', (_, dir) => {
  let capi: Mamba2Model;
  let node: Mamba2Model;
  beforeAll(async () => {
    capi = await Mamba2Model.load(dir, { backend: 'capi' });
    node = await Mamba2Model.load(dir, { backend: nodeBackend() });
  });
  afterAll(async () => {
    await capi?.release();
    await node?.release();
  });

  it('runs on the CPU EP with the same graph metadata', () => {
    expect(capi.backend.name).toBe('onnxruntime-capi');
    expect(capi.ep).toBe('cpu');
    expect(capi.fallbacks).toEqual([]);
    if (dir === tinyExt) expect(extData).toBeTruthy(); // weights in a separate file, found beside model.onnx
    expect(capi.deviceState).toBe(false);
    expect(capi.specs).toEqual(node.specs);
    const s = (m: Mamba2Model) => (m as unknown as { session: { inputs: unknown; outputs: unknown } }).session;
    expect(s(capi).inputs).toEqual(s(node).inputs);
    expect(s(capi).outputs).toEqual(s(node).outputs);
  });

  it('same logits on prefill and on each decode step through the state (≤ 1e-5)', async () => {
    const V = capi.config.realVocabSize;
    let a = await capi.forward([ids(19, 1, V)]);
    let b = await node.forward([ids(19, 1, V)]);
    expect(maxDiff(a.logits.data, b.logits.data)).toBeLessThanOrEqual(1e-5);
    for (let k = 0; k < 6; k++) {
      const tok = (k * 5 + 3) % V;
      const [na, nb] = [await capi.forward([[tok]], a.state), await node.forward([[tok]], b.state)];
      a.state.dispose();
      b.state.dispose();
      [a, b] = [na, nb];
      expect(maxDiff(a.logits.data, b.logits.data)).toBeLessThanOrEqual(1e-5);
    }
    expect(await stateDiff(a.state, b.state)).toBeLessThanOrEqual(1e-5);
    a.state.dispose();
    b.state.dispose();
  });

  it('batch 2 prefill and decode match', async () => {
    const V = capi.config.realVocabSize;
    const rows = [ids(9, 2, V), ids(9, 5, V)];
    const [a, b] = [await capi.forward(rows), await node.forward(rows)];
    expect(maxDiff(a.logits.data, b.logits.data)).toBeLessThanOrEqual(1e-5);
    const [a2, b2] = [await capi.forward([[1], [2]], a.state), await node.forward([[1], [2]], b.state)];
    expect(maxDiff(a2.logits.data, b2.logits.data)).toBeLessThanOrEqual(1e-5);
    for (const s of [a.state, b.state, a2.state, b2.state]) s.dispose();
  });

  it('same greedy tokens from generate (states written in place at batch 1 where the model allows)', async () => {
    const V = capi.config.realVocabSize;
    expect(capi.writesStateInPlace(1)).toBe(!capi.hasKvCache);
    const opts = { maxNewTokens: 24, minNewTokens: 24 };
    const [a, b] = [await capi.generate(ids(7, 3, V), opts), await node.generate(ids(7, 3, V), opts)];
    expect(a.outputIds).toHaveLength(24);
    expect(a.outputIds).toEqual(b.outputIds);
    const s = { maxNewTokens: 12, temperature: 0.8, topK: 20, seed: 7 };
    expect((await capi.generate([4, 5], s)).outputIds).toEqual((await node.generate([4, 5], s)).outputIds);
    const [ba, bb] = [
      await capi.generateBatch([ids(5, 1, V), ids(8, 2, V)], opts),
      await node.generateBatch([ids(5, 1, V), ids(8, 2, V)], opts),
    ];
    expect(ba.map((r) => r.outputIds)).toEqual(bb.map((r) => r.outputIds));
  });
});

describe('C-API backend: sessions, tensors, options', () => {
  const backend = capiBackend();

  it('reports its library and the EPs compiled into it', () => {
    expect(backend.info.version).toMatch(/^1\.\d+\.\d+/);
    expect(backend.info.apiVersion).toBeGreaterThanOrEqual(16);
    expect(backend.compiledEps()).toContain('cpu');
    expect(capiBackend()).toBe(backend);
  });

  it('a session from bytes, lean memory and one thread gives the same logits as from the path', async () => {
    const meta = JSON.parse(readFileSync(join(tiny, 'mamba2-onnx.json'), 'utf8'));
    const a = await Mamba2Model.load(tiny, { backend });
    const b = await Mamba2Model.create({
      model: readFileSync(join(tiny, 'model.onnx')),
      meta,
      backend,
      memory: 'lean',
      intraOpNumThreads: 1,
    });
    const [ra, rb] = [await a.forward([[1, 2, 3, 4]]), await b.forward([[1, 2, 3, 4]])];
    expect(maxDiff(ra.logits.data, rb.logits.data)).toBeLessThanOrEqual(1e-5);
    await a.release();
    await b.release();
  });

  it('session options: lean memory turns off prepacking; the CUDA provider options are released whatever happens', () => {
    const lib = backend.lib;
    const so = lib.make('CreateSessionOptions');
    try {
      configureSession(lib, so, { logSeverityLevel: 3, intraOpNumThreads: 1, lean: true });
      const has = new Int32Array(1);
      lib.call('HasSessionConfigEntry', so, 'session.disable_prepacking', has);
      expect(has[0]).toBe(1);
      if (!backend.compiledEps().includes('cuda')) return;
      try {
        appendProvider(lib, so, 'cuda', { deviceId: 0, cudaGraph: true });
      } catch (e) {
        expect(summarizeCapiError(e, 'cuda')).not.toMatch(/\n/); // no provider library here: one line
      }
    } finally {
      lib.raw.ReleaseSessionOptions(so);
    }
  });

  it('host tensors are checked like onnxruntime’s; outputs are JS-owned copies; dispose twice is safe', async () => {
    expect(() => backend.tensor('float32', new Int32Array(4) as never, [4])).toThrow(/needs a Float32Array/);
    expect(() => backend.tensor('float32', new Float32Array(4), [2, 3])).toThrow(/hold 6 values, the data has 4/);
    const t = backend.tensor('float16', new Uint16Array([1, 2, 3]), [3]);
    expect(await t.getData()).toEqual(new Uint16Array([1, 2, 3]));
    t.dispose();
    t.dispose();
    expect(t.location).toBe('none');
    expect(() => t.data).toThrow(/disposed/);
  });

  it('copies to the host through the Identity copy session; CopyTensors fails closed where no data transfer is registered', async () => {
    const src = CapiTensor.host(backend.lib, 'float32', Float32Array.from([1, -2, 3.5, 0, 7, 8]), [2, 3]);
    expect(await backend.copyToHost(src, 'identity')).toEqual(src.data);
    expect(await backend.copyToHost(src, 'identity')).toEqual(src.data); // the copy session is reused
    if (backend.lib.has('CopyTensors')) {
      // ORT's CopyTensors needs an EP that registered its data transfer with the Env (plugin EPs);
      // the built-in CPU EP has none, so it must fail with ORT's reason and the call named
      let copied: unknown;
      try {
        copied = backend.copyToHost(src, 'copy-tensors');
      } catch (e) {
        copied = e;
      }
      if (copied instanceof Error) expect(copied.message).toMatch(/^CopyTensors: ORT_NOT_IMPLEMENTED: /);
      else expect(copied).toEqual(src.data);
    }
    src.dispose();
    await backend.release();
  });

  it('refuses tensors of another backend, and runs after release', async () => {
    const s = await backend.createSession(join(tiny, 'model.onnx'), { eps: ['cpu'] });
    const foreign = new ort.Tensor('int64', BigInt64Array.from([1n]), [1, 1]) as unknown as RtTensor;
    await expect(s.run({ input_ids: foreign })).rejects.toThrow(/must be a tensor made by this C-API backend/);
    await s.release();
    await s.release();
    await expect(s.run({})).rejects.toThrow(/released/);
  });

  it('an unknown or unavailable EP falls back to the next one, with a one-line reason', async () => {
    const s = await backend.createSession(join(tiny, 'model.onnx'), { eps: ['bogus' as never, 'cuda', 'webgpu', 'cpu'] });
    expect(s.fallbacks[0]).toEqual({ ep: 'bogus', reason: "unknown execution provider 'bogus' (expected one of cpu, webgpu, cuda)" });
    for (const f of s.fallbacks) expect(f.reason).not.toMatch(/\n/);
    if (s.ep === 'cpu') {
      // this machine has no GPU: both GPU EPs say why in one line, naming the API call
      expect(s.fallbacks.map((f) => f.ep)).toEqual(['bogus', 'cuda', 'webgpu']);
      expect(s.fallbacks[1]!.reason).toMatch(/CUDA|cuda/);
    }
    await s.release();
  });

  it('only an unavailable EP: EpUnavailableError naming it; a broken model: ORT’s message with the API call', async () => {
    const s = await backend.createSession(join(tiny, 'model.onnx'), { eps: ['cuda'] }).catch((e: unknown) => e);
    if (s instanceof Error) {
      expect(s).toBeInstanceOf(EpUnavailableError);
      expect(s.message).toMatch(/^execution provider 'cuda' is unavailable: \w+: /);
    } else await (s as { release(): Promise<void> }).release();
    const broken = join(root, 'broken.onnx');
    writeFileSync(broken, 'not a protobuf at all');
    const e = await backend.createSession(broken, { eps: ['cpu'] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SessionCreateError);
    expect((e as Error).message).toMatch(/CreateSession: .*(protobuf|Protobuf)/);
    const missing = await backend.createSession(join(root, 'nope.onnx'), { eps: ['cpu'] }).catch((x: unknown) => x);
    expect((missing as Error).message).toMatch(/CreateSession: .*nope\.onnx/);
    const fromBytes = await backend.createSession(new Uint8Array([1, 2, 3]), { eps: ['cpu'] }).catch((x: unknown) => x);
    expect((fromBytes as Error).message).toMatch(/CreateSessionFromArray: /);
  });
});

describe('C-API backend: loading the library', () => {
  it('a bad library path is one clear line; so is a library that is not ONNX Runtime', () => {
    expect(() => new CapiBackend({ libraryPath: join(root, 'nope.so') })).toThrow(CapiUnavailableError);
    expect(() => new CapiBackend({ libraryPath: join(root, 'nope.so') })).toThrow(
      /^no ONNX Runtime library at .*nope\.so \(from libraryPath\)$/,
    );
    const notOrt = join(root, 'fake.so');
    writeFileSync(notOrt, 'not an ELF file');
    expect(() => loadOrt({ libraryPath: notOrt })).toThrow(/^could not load the ONNX Runtime library .*fake\.so/);
  });

  it(`${ORT_LIB_ENV} picks the library; preferredBackend falls back to onnxruntime-node with the reason`, async () => {
    const before = process.env[ORT_LIB_ENV];
    process.env[ORT_LIB_ENV] = join(root, 'env-nope.so');
    try {
      expect(() => loadOrt()).toThrow(new RegExp(`env-nope\\.so \\(from \\$${ORT_LIB_ENV}\\)`));
    } finally {
      if (before === undefined) delete process.env[ORT_LIB_ENV];
      else process.env[ORT_LIB_ENV] = before;
    }
    const ok = await preferredBackend('capi');
    expect(ok.backend.name).toBe('onnxruntime-capi');
    expect(ok.fallbackReason).toBeUndefined();
    const fb = await preferredBackend('capi', { libraryPath: join(root, 'nope.so') });
    expect(fb.backend.name).toBe('onnxruntime-node');
    expect(fb.fallbackReason).toMatch(/^the C-API backend is unavailable \(no ONNX Runtime library at .*nope\.so/);
    expect((await preferredBackend('node')).backend.name).toBe('onnxruntime-node');
    await expect(Mamba2Model.load(tiny, { backend: 'bogus' as never })).rejects.toThrow(
      /opts\.backend: unknown backend the string "bogus"/,
    );
  });
});
