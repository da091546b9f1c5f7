import { describe, expect, it } from 'vitest';
import { ioTable } from '../package/io.js';
import type { ValueInfo } from './backend.js';
import { nodeBackend } from './node.js';
import { crc32, deserializeState, serializeState, StateFormatError } from './state-io.js';
import { ModelMismatchError, stateFromHost, stateSpecs, zeroState, type HostState } from './state.js';
import { concatHostStates, sliceHostState } from './state-rows.js';
import { toyMeta } from '../../test/helpers/toy-model.js';

const host = (batch: number, seed = 1): HostState => {
  let s = seed;
  const v = (): number => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647) * 2 - 1;
  };
  return {
    batch,
    tensors: [
      { name: 'past_conv.0', dims: [batch, 2, 2], data: Float32Array.from({ length: batch * 4 }, v) },
      { name: 'past_ssm.0', dims: [batch, 1, 1, 8], data: Float32Array.from({ length: batch * 8 }, v) },
    ],
  };
};

/** The session metadata an exact export of `meta` reports (what onnxruntime gives for the toy model). */
const sessionInfo = (): { inputs: ValueInfo[]; outputs: ValueInfo[] } => {
  const io = ioTable(toyMeta().config);
  const info = (e: { name: string; dtype: string; shape: readonly (number | string)[] }): ValueInfo => ({
    name: e.name,
    type: e.dtype,
    shape: e.shape,
  });
  return { inputs: io.inputs.map(info), outputs: io.outputs.map(info) };
};

describe('serializeState / deserializeState', () => {
  it('round-trips exactly', () => {
    const h = host(3);
    const bytes = serializeState(h);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('M2ST');
    const back = deserializeState(bytes);
    expect(back.batch).toBe(3);
    expect(back.tensors.map((t) => [t.name, [...t.dims]])).toEqual(h.tensors.map((t) => [t.name, [...t.dims]]));
    back.tensors.forEach((t, i) => expect(t.data).toEqual(h.tensors[i]!.data));
  });

  it('reads from an unaligned view', () => {
    const bytes = serializeState(host(1));
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(deserializeState(shifted.subarray(1)).tensors[1]!.data).toEqual(host(1).tensors[1]!.data);
  });

  it('rejects corrupted bytes', () => {
    const good = serializeState(host(2));
    const flip = (at: number): Uint8Array => {
      const b = good.slice();
      b[at]! ^= 0x10;
      return b;
    };
    expect(() => deserializeState(flip(good.length - 20))).toThrow(/checksum mismatch/); // data
    expect(() => deserializeState(flip(20))).toThrow(StateFormatError); // header
    expect(() => deserializeState(flip(0))).toThrow(/magic/);
    expect(() => deserializeState(good.subarray(0, good.length - 8))).toThrow(StateFormatError); // truncated
    expect(() => deserializeState(new Uint8Array(8))).toThrow(/at least 16 bytes/);
    expect(() => deserializeState('M2ST' as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('rejects another format version and inconsistent headers even with a valid checksum', () => {
    const reseal = (b: Uint8Array): Uint8Array => {
      new DataView(b.buffer).setUint32(b.length - 4, crc32(b.subarray(0, b.length - 4)), true);
      return b;
    };
    const v2 = serializeState(host(1));
    new DataView(v2.buffer).setUint32(4, 2, true);
    expect(() => deserializeState(reseal(v2))).toThrow(/format version expected 1, got 2/);
    const lie = serializeState({ ...host(1), batch: 2 });
    expect(() => deserializeState(lie)).toThrow(/leading dim expected batch = 2/);
    const short = serializeState({ batch: 1, tensors: [{ name: 'a', dims: [1, 4], data: new Float32Array(3) }] });
    expect(() => deserializeState(short)).toThrow(/expected 4 float32 values/);
  });

  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});

describe('host state batch operations', () => {
  it('concat then slice gives the rows back', () => {
    const a = host(1, 3);
    const b = host(2, 5);
    const ab = concatHostStates([a, b]);
    expect(ab.batch).toBe(3);
    expect(ab.tensors[0]!.dims).toEqual([3, 2, 2]);
    expect(sliceHostState(ab, 0).tensors[1]!.data).toEqual(a.tensors[1]!.data);
    expect(sliceHostState(ab, 1, 3).tensors[0]!.data).toEqual(b.tensors[0]!.data);
    expect(() => sliceHostState(ab, 2, 4)).toThrow(RangeError);
    expect(() => concatHostStates([a, { batch: 1, tensors: [a.tensors[1]!, a.tensors[0]!] }])).toThrow(/differs/);
  });
});

describe('stateSpecs: graph metadata vs mamba2-onnx.json vs config', () => {
  it('finds one conv and one ssm state per layer', () => {
    const { inputs, outputs } = sessionInfo();
    const specs = stateSpecs(toyMeta(), inputs, outputs);
    expect(specs).toEqual([
      { layer: 0, role: 'conv_state', input: 'past_conv.0', output: 'present_conv.0', type: 'float32', dims: [2, 2] },
      { layer: 0, role: 'ssm_state', input: 'past_ssm.0', output: 'present_ssm.0', type: 'float32', dims: [1, 1, 8] },
    ]);
  });

  it('names every mismatch with expected vs got', () => {
    const { inputs, outputs } = sessionInfo();
    const bad = inputs.map((v) => (v.name === 'past_ssm.0' ? { ...v, shape: ['batch', 1, 1, 16] } : v));
    expect(() => stateSpecs(toyMeta(), bad, outputs)).toThrow(
      /past_ssm\.0': shape expected \[batch, 1, 1, 8\] \(json\), got \[batch, 1, 1, 16\] \(graph\)/,
    );
    const missing = inputs.filter((v) => v.name !== 'past_conv.0');
    expect(() => stateSpecs(toyMeta(), missing, outputs)).toThrow(ModelMismatchError);
    const extra = [...inputs, { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] }];
    expect(() => stateSpecs(toyMeta(), extra, outputs)).toThrow(/graph input 'attention_mask' is not in mamba2-onnx\.json/);
    const typed = inputs.map((v) => (v.name === 'past_conv.0' ? { ...v, type: 'float16' } : v));
    expect(() => stateSpecs(toyMeta(), typed, outputs)).toThrow(/dtype expected float32 \(json\), got float16 \(graph\)/);
    const meta = toyMeta();
    const wrongConfig = { ...meta, config: { ...meta.config, convDim: 3 } };
    expect(() => stateSpecs(wrongConfig, inputs, outputs)).toThrow(/per-row shape expected \[3, 2\] from the config, got \[2, 2\]/);
  });
});

describe('states as onnxruntime tensors', () => {
  const backend = nodeBackend();
  const { inputs, outputs } = sessionInfo();
  const specs = stateSpecs(toyMeta(), inputs, outputs);

  it('zeroState is sized from the specs for any batch', async () => {
    const z = zeroState(backend, specs, 3);
    expect(z.tensors.map((t) => t.dims)).toEqual([
      [3, 2, 2],
      [3, 1, 1, 8],
    ]);
    const h = await z.toHost();
    expect(h.tensors.every((t) => t.data.every((x) => x === 0))).toBe(true);
    expect(() => zeroState(backend, specs, 0)).toThrow(RangeError);
    z.dispose();
    expect(z.disposed).toBe(true);
    expect(() => z.tensors).toThrow(/disposed/);
  });

  it('stateFromHost checks names and dims', async () => {
    const s = stateFromHost(backend, specs, host(2));
    expect((await s.toHost()).tensors[1]!.data).toEqual(host(2).tensors[1]!.data);
    const renamed: HostState = { batch: 1, tensors: [{ ...host(1).tensors[0]!, name: 'past_conv.1' }, host(1).tensors[1]!] };
    expect(() => stateFromHost(backend, specs, renamed)).toThrow(/expected name 'past_conv\.0', got 'past_conv\.1'/);
    expect(() => stateFromHost(backend, specs, { batch: 1, tensors: host(1).tensors.slice(0, 1) })).toThrow(/expected 2 tensors/);
  });

  it('fp16 states are widened on save and narrowed on load', async () => {
    const half = specs.map((s) => (s.role === 'conv_state' ? { ...s, type: 'float16' as const } : s));
    const h: HostState = {
      batch: 1,
      tensors: [{ name: 'past_conv.0', dims: [1, 2, 2], data: Float32Array.of(1, -2.5, 0.099975586, 65504) }, host(1).tensors[1]!],
    };
    const s = stateFromHost(backend, half, h);
    expect(s.tensors[0]!.type).toBe('float16');
    expect([...(await s.toHost()).tensors[0]!.data]).toEqual([1, -2.5, 0.099975586, 65504].map(Math.fround));
  });
});
