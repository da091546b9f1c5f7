import { describe, expect, it } from 'vitest';
import { ATTR_TYPE, decodeModel, encodeModel, type ModelProto } from './proto.js';

const model = (irVersion: number, ints: number[]): ModelProto => ({
  irVersion,
  opsetImport: [{ domain: '', version: 21 }],
  metadataProps: [],
  functions: [],
  graph: {
    name: 'g',
    input: [],
    output: [],
    valueInfo: [],
    initializer: [],
    metadataProps: [],
    node: [
      {
        input: ['a'],
        output: ['b'],
        opType: 'Transpose',
        metadataProps: [],
        attribute: [{ name: 'perm', type: ATTR_TYPE.INTS, ints, floats: [], strings: [], tensors: [], graphs: [] }],
      },
    ],
  },
});

describe('proto', () => {
  it('round-trips int64 values as numbers, negatives and 2^53 − 1 included', () => {
    const m = decodeModel(encodeModel(model(10, [-1, 0, 2 ** 40, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER])));
    expect(m.irVersion).toBe(10);
    expect(m.graph!.node[0]!.attribute[0]!.ints).toEqual([-1, 0, 2 ** 40, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
    expect(m.graph!.node[0]!.attribute[0]!.f).toBeUndefined();
  });

  it('refuses int64 values beyond 2^53 when decoding', () => {
    const bytes = encodeModel(model(10, [2 ** 60]));
    expect(() => decodeModel(bytes)).toThrow(/ModelProto\.graph\.node\.attribute\.ints = 1152921504606846976 is beyond/);
  });

  it('writes field numbers from onnx.proto (ir_version = 1, opset_import = 8)', () => {
    const bytes = encodeModel({ irVersion: 10, opsetImport: [{ domain: '', version: 21 }], metadataProps: [], functions: [] });
    // 0x08 = field 1 varint; 0x42 = field 8 length-delimited; inside: 0x0a 00 (domain ''), 0x10 0x15 (version 21).
    expect(Array.from(bytes)).toEqual([0x08, 10, 0x42, 4, 0x0a, 0, 0x10, 21]);
  });

  it('refuses a malformed object with a message', () => {
    const bad = { ...model(10, []), irVersion: 'ten' } as unknown as ModelProto;
    expect(() => encodeModel(bad)).toThrow(/invalid ModelProto: irVersion/);
  });
});
