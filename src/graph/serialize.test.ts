import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelIR } from './ir.js';
import { ATTR_TYPE, DATA_LOCATION, decodeModel } from '../onnx/proto.js';
import { EXTERNAL_ALIGNMENT, saveModel, type SaveOptions } from './serialize.js';
import { controlModel, f32, mlpModel, mlpReference, node, unloadable, vi } from '../../test/helpers/graph-models.js';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'm2o-serialize-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function save(model: ModelIR, opts: SaveOptions): Promise<{ dir: string; files: string[]; externalBytes: number }> {
  const dir = await mkdtemp(join(root, `m${n++}-`));
  return { dir, ...(await saveModel(model, dir, opts)) };
}

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function expectClose(got: ArrayLike<number>, want: readonly number[], atol = 1e-5): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `max |Δ| ${worst} at ${at}`).toBeLessThanOrEqual(atol);
}

describe('saveModel', () => {
  it('writes external + inline initializers that ONNX Runtime runs correctly', async () => {
    const progress: string[] = [];
    const out = await save(mlpModel(), {
      externalData: 'always',
      externalThreshold: 32,
      onTensor: (done, total, name) => progress.push(`${done}/${total} ${name}`),
    });
    expect(out.files).toEqual([join(out.dir, 'model.onnx'), join(out.dir, 'model.onnx.data')]);
    expect(progress).toEqual(['1/5 w1', '2/5 b1', '3/5 w2', '4/5 ln.scale', '5/5 ln.bias']);
    expect(out.externalBytes).toBe(EXTERNAL_ALIGNMENT + 36);
    expect((await readdir(out.dir)).sort()).toEqual(['model.onnx', 'model.onnx.data']);

    const x = [0.1, -0.2, 0.3, 0.4, 1, 2, -3, 0.5];
    const res = await run(out.files[0]!, { x: new ort.Tensor('float32', Float32Array.from(x), [2, 4]) });
    expect(res.y!.dims).toEqual([2, 3]);
    expectClose(res.y!.data as Float32Array, mlpReference(x, 2), 1e-4);
  });

  it('aligns external tensors to 4096 bytes and keeps small ones inline', async () => {
    const out = await save(mlpModel(), { externalData: 'always', externalThreshold: 32 });
    const model = decodeModel(await readFile(out.files[0]!));
    const data = await readFile(out.files[1]!);
    const inits = model.graph!.initializer;
    expect(inits.map((t) => t.name)).toEqual(['w1', 'b1', 'w2', 'ln.scale', 'ln.bias']);
    const ext = inits.filter((t) => t.dataLocation === DATA_LOCATION.EXTERNAL);
    expect(ext.map((t) => t.name)).toEqual(['w1', 'w2']);
    for (const t of ext) {
      const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
      expect(kv.location).toBe('model.onnx.data');
      expect(Number(kv.offset) % EXTERNAL_ALIGNMENT).toBe(0);
      expect(t.rawData).toBeUndefined();
      const bytes = data.subarray(Number(kv.offset), Number(kv.offset) + Number(kv.length));
      expect(Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)))).toEqual(
        seqOf(t.name as 'w1' | 'w2'),
      );
    }
    expect(inits.find((t) => t.name === 'b1')!.rawData!.length).toBe(12);
    expect(inits[0]!.dims).toEqual([4, 3]);
    const x = model.graph!.input[0]!.type!.tensorType!;
    expect(x.shape!.dim).toEqual([{ dimParam: 'batch' }, { dimValue: 4 }]);
  });

  it('is deterministic: two saves give byte-identical files; metadata and opsets sorted', async () => {
    const a = await save(controlModel(), { externalData: 'never' });
    const b = await save(controlModel(), { externalData: 'never' });
    expect(Buffer.compare(await readFile(a.files[0]!), await readFile(b.files[0]!))).toBe(0);
    const c = await save(mlpModel(), { externalData: 'always', externalThreshold: 32 });
    const d = await save(mlpModel(), { externalData: 'always', externalThreshold: 32 });
    for (const i of [0, 1]) expect(Buffer.compare(await readFile(c.files[i]!), await readFile(d.files[i]!))).toBe(0);
    const m = decodeModel(await readFile(c.files[0]!));
    expect(m.metadataProps).toEqual([
      { key: 'alpha', value: 'first' },
      { key: 'zeta', value: 'last' },
    ]);
    const ctl = decodeModel(await readFile(a.files[0]!));
    expect(ctl.opsetImport).toEqual([
      { domain: '', version: 21 },
      { domain: 'ai.mamba2onnx', version: 1 },
    ]);
  });

  it("'auto' keeps a small model in one file", async () => {
    const out = await save(mlpModel(), { externalData: 'auto', externalThreshold: 32 });
    expect(out.files).toEqual([join(out.dir, 'model.onnx')]);
    expect(out.externalBytes).toBe(0);
    expect(await readdir(out.dir)).toEqual(['model.onnx']);
  });

  it('keeps float attributes as FLOAT (LayerNormalization epsilon) and ints as INT', async () => {
    const out = await save(mlpModel(), { externalData: 'never' });
    const m = decodeModel(await readFile(out.files[0]!));
    const ln = m.graph!.node.find((x) => x.opType === 'LayerNormalization')!;
    const eps = ln.attribute.find((a) => a.name === 'epsilon')!;
    expect(eps.type).toBe(ATTR_TYPE.FLOAT);
    expect(eps.f).toBe(Math.fround(1e-5));
    const axis = ln.attribute.find((a) => a.name === 'axis')!;
    expect([axis.type, axis.i]).toEqual([ATTR_TYPE.INT, -1]);
  });

  it('runs If subgraphs (inline initializer, Constant attribute) and a local function with an attribute reference', async () => {
    const out = await save(controlModel(), { externalData: 'auto' });
    const x = [1, -2, 3.5];
    const feeds = (c: boolean) => ({
      x: new ort.Tensor('float32', Float32Array.from(x), [3]),
      cond: new ort.Tensor('bool', Uint8Array.from([c ? 1 : 0]), []),
    });
    expectClose(
      (await run(out.files[0]!, feeds(true))).out!.data as Float32Array,
      x.map((v) => 0.5 * 2 * v + v),
    );
    expectClose(
      (await run(out.files[0]!, feeds(false))).out!.data as Float32Array,
      x.map((v) => 0.5 * (v - 1) + v),
    );

    const m = decodeModel(await readFile(out.files[0]!));
    const fn = m.functions[0]!;
    expect([fn.domain, fn.name, fn.attribute]).toEqual(['ai.mamba2onnx', 'ScaleAdd', ['alpha']]);
    const ref = fn.node[0]!.attribute[0]!;
    expect([ref.name, ref.refAttrName, ref.type]).toEqual(['value_float', 'alpha', ATTR_TYPE.FLOAT]);
    expect(m.graph!.input[0]!.type!.tensorType!.shape!.dim).toEqual([{}]);
  });

  it("'never' refuses a model over 2 GiB before loading any tensor", async () => {
    const m = mlpModel();
    m.graph.initializers.push({ name: 'huge', data: unloadable([2 ** 29 + 1]) });
    await expect(save(m, { externalData: 'never' })).rejects.toThrow(/2 GiB protobuf limit.*'auto' or 'always'/);
  });

  it('refuses large tensors nested in subgraphs or attributes, and references outside functions', async () => {
    const big = controlModel();
    big.graph.nodes.unshift(node('Constant', [], ['c'], { value: { type: 'tensor', value: unloadable([2 ** 21]) } }));
    await expect(save(big, { externalData: 'auto' })).rejects.toThrow(/limited to \d+ bytes: make it an initializer/);
    const ref = mlpModel();
    ref.graph.nodes[3]!.attributes.epsilon = { type: 'ref', refName: 'eps', refType: 'float' };
    const dir = await mkdtemp(join(root, 'ref-'));
    await expect(saveModel(ref, dir, { externalData: 'always', externalThreshold: 0 })).rejects.toThrow(
      /only allowed inside function bodies/,
    );
    expect(await readdir(dir)).toEqual([]); // failed before the data file was written
  });

  it('checks tensor sizes and options, and leaves no file behind on failure', async () => {
    const bad = mlpModel();
    bad.graph.initializers[0] = { name: 'w1', data: { ...f32([4, 3], new Array(12).fill(0)), byteLength: 40 } };
    const dir = await mkdtemp(join(root, 'bad-'));
    await expect(saveModel(bad, dir, { externalData: 'always', externalThreshold: 0 })).rejects.toThrow(
      /byteLength 40 does not match float32\[4,3\] = 48 bytes/,
    );
    expect(await readdir(dir)).toEqual([]);
    await expect(saveModel(mlpModel(), dir, { externalData: 'never', modelFile: 'sub/model.onnx' })).rejects.toThrow(/plain file name/);
    const v = { ...mlpModel(), graph: { ...mlpModel().graph, inputs: [vi('x', 'float32', ['batch', 4])] } };
    await expect(saveModel(v, dir, { externalData: 'auto', externalThreshold: -1 })).rejects.toThrow(/externalThreshold/);
  });

  it('loads tensors one at a time, in order', async () => {
    const m = mlpModel();
    const log: string[] = [];
    let live = 0;
    m.graph.initializers = m.graph.initializers.map(({ name, data }) => ({
      name,
      data: {
        ...data,
        bytes: async () => {
          live++;
          log.push(`load ${name} live=${live}`);
          await new Promise((r) => setTimeout(r, 1));
          live--;
          return data.bytes();
        },
      },
    }));
    await save(m, { externalData: 'always', externalThreshold: 32 });
    expect(log).toEqual(['w1', 'b1', 'w2', 'ln.scale', 'ln.bias'].map((k) => `load ${k} live=1`));
  });
});

function seqOf(name: 'w1' | 'w2'): number[] {
  const t = mlpModel().graph.initializers.find((i) => i.name === name)!;
  const b = t.data.bytes() as Uint8Array;
  return Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
}
