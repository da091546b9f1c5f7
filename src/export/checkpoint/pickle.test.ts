import { describe, expect, it } from 'vitest';
import { PyDict, PyGlobal, type PyList, type PyTuple, unpickle, type GlobalCall, type PickleValue } from './pickle.js';
import { CheckpointError } from './types.js';
import { PickleWriter } from '../../../test/helpers/torch-checkpoint.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const noGlobals = new Map<string, GlobalCall | undefined>();
const load = (data: Uint8Array, globals = noGlobals): PickleValue => unpickle(data, { path: 'f.bin', what: 'data.pkl', globals });

function refused(data: Uint8Array, globals = noGlobals): CheckpointError {
  try {
    load(data, globals);
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).path).toBe('f.bin');
    return err as CheckpointError;
  }
  throw new Error('expected a CheckpointError');
}

/** CPython 3.11: pickle.dumps({'a': [1, -2, 3.5, 2**70, -2**65, (True, None, False)], 'b': 'héllo', 'c': (1,2,3,4), 300: b'xy'}, protocol=N) */
const PROTO4 =
  '8004955c000000000000007d94288c0161945d94284b014afeffffff47400c0000000000008a090000000000000000408a090000000000000000fe884e8987' +
  '94658c0162948c0668c3a96c6c6f948c016394284b014b024b034b0474944d2c014302787994752e';
const PROTO2 =
  '80027d71002858010000006171015d7102284b014afeffffff47400c0000000000008a090000000000000000408a090000000000000000fe884e8987710365' +
  '5801000000627104580600000068c3a96c6c6f71055801000000637106284b014b024b034b047471074d2c01635f636f646563730a656e636f64650a7108' +
  '58020000007879710958060000006c6174696e31710a86710b52710c752e';

describe('unpickle', () => {
  it('reads the values of a CPython protocol-4 pickle (FRAME, MEMOIZE, LONG1, BINFLOAT, bytes)', () => {
    const v = load(hex(PROTO4));
    expect(v).toBeInstanceOf(PyDict);
    const d = (v as PyDict).map;
    const a = d.get('a') as PyList;
    expect(a.items.slice(0, 5)).toEqual([1, -2, 3.5, 2n ** 70n, -(2n ** 65n)]);
    expect((a.items[5] as PyTuple).items).toEqual([true, null, false]);
    expect(d.get('b')).toBe('héllo');
    expect((d.get('c') as PyTuple).items).toEqual([1, 2, 3, 4]);
    expect(d.get(300)).toEqual(new Uint8Array([0x78, 0x79]));
  });

  it('refuses a global that is not allowed, naming it and the file', () => {
    // protocol 2 writes bytes as _codecs.encode(...): not on the list.
    expect(refused(hex(PROTO2)).message).toMatch(/^f\.bin: data\.pkl: pickle global '_codecs\.encode' is not allowed/);
    const osSystem = new PickleWriter().raw(0x80, 2).global('os', 'system').str('echo pwned').raw(0x85, 0x52).done();
    expect(refused(osSystem).message).toMatch(/global 'os\.system' is not allowed/);
    // builtins.eval via STACK_GLOBAL (protocol 4 style).
    const enc = new TextEncoder();
    const evalPickle = Uint8Array.from([
      0x80,
      4,
      0x8c,
      8,
      ...enc.encode('builtins'),
      0x8c,
      4,
      ...enc.encode('eval'),
      0x93,
      0x8c,
      1,
      0x31,
      0x85,
      0x52,
      0x2e,
    ]);
    expect(refused(evalPickle).message).toMatch(/global 'builtins\.eval' is not allowed/);
  });

  it('refuses unknown and unsupported opcodes, naming them', () => {
    expect(refused(Uint8Array.from([0x80, 2, 0xff, 0x2e])).message).toMatch(/opcode 0xff is not supported \(at byte 2\)/);
    const inst = Uint8Array.from([0x80, 2, 0x28, 0x69, ...new TextEncoder().encode('os\nsystem\n'), 0x2e]);
    expect(refused(inst).message).toMatch(/opcode 0x69 \(INST\) is not supported/);
    expect(refused(Uint8Array.from([0x80, 2, 0x7d, 0x8f, 0x2e])).message).toMatch(/EMPTY_SET/);
    expect(refused(Uint8Array.from([0x80, 6, 0x4e, 0x2e])).message).toMatch(/protocol 6 is not supported/);
  });

  it('calls only allowed globals, and only those that are callable', () => {
    const globals = new Map<string, GlobalCall | undefined>([
      ['collections.OrderedDict', () => new PyDict()],
      ['torch.FloatStorage', undefined],
    ]);
    const od = new PickleWriter().raw(0x80, 2).global('collections', 'OrderedDict').raw(0x29, 0x52).done();
    expect(load(od, globals)).toBeInstanceOf(PyDict);
    const asValue = new PickleWriter().raw(0x80, 2).global('torch', 'FloatStorage').done();
    expect(load(asValue, globals)).toBeInstanceOf(PyGlobal);
    const called = new PickleWriter().raw(0x80, 2).global('torch', 'FloatStorage').raw(0x29, 0x52).done();
    expect(refused(called, globals).message).toMatch(/'torch\.FloatStorage' is allowed as a value but not as a call/);
  });

  it('refuses malformed pickles: truncation, bad memo, stack underflow, no STOP', () => {
    expect(refused(Uint8Array.from([0x80, 2, 0x58, 10, 0, 0, 0, 0x61])).message).toMatch(/pickle ends early/);
    expect(refused(Uint8Array.from([0x80, 2, 0x68, 7, 0x2e])).message).toMatch(/memo has no entry 7/);
    expect(refused(Uint8Array.from([0x80, 2, 0x85, 0x2e])).message).toMatch(/stack underflow/);
    expect(refused(Uint8Array.from([0x80, 2, 0x4e])).message).toMatch(/pickle ends early/);
    expect(refused(Uint8Array.from([0x80, 2, 0x4e, 0x4e, 0x2e])).message).toMatch(/STOP with 2 stack items/);
    expect(refused(Uint8Array.from([0x80, 2, 0x28, 0x4e, 0x2e])).message).toMatch(/open MARKs/);
    expect(refused(Uint8Array.from([0x80, 2, 0x4e, 0x28, 0x4e, 0x73, 0x2e])).message).toMatch(/stack underflow/);
    expect(refused(Uint8Array.from([0x80, 2, 0x5d, 0x4e, 0x4e, 0x73, 0x2e])).message).toMatch(/SETITEM\(S\) target is not a dict/);
    expect(refused(Uint8Array.from([0x80, 2, 0x4e, 0x4e, 0x52, 0x2e])).message).toMatch(/REDUCE target is not a global/);
    expect(refused(Uint8Array.from([0x80, 2, 0x4e, 0x51, 0x2e])).message).toMatch(/BINPERSID without a persistent-id loader/);
  });

  it('bounds the stack', () => {
    const many = new Uint8Array(2 + (1 << 20) + 2).fill(0x4e);
    many[0] = 0x80;
    many[1] = 2;
    many[many.length - 1] = 0x2e;
    expect(refused(many).message).toMatch(/stack exceeds 1048576 items/);
  });

  it('passes persistent ids to the loader', () => {
    const w = new PickleWriter().raw(0x80, 2, 0x28).str('storage').int(5).raw(0x74, 0x51);
    const got = unpickle(w.done(), {
      path: 'f.bin',
      what: 'data.pkl',
      globals: noGlobals,
      persistentLoad: (pid) => `loaded ${((pid as PyTuple).items as PickleValue[]).join(',')}`,
    });
    expect(got).toBe('loaded storage,5');
  });

  it('writes and reads back ints the way CPython encodes them', () => {
    for (const n of [0, 255, 256, 65535, 65536, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 40), 2 ** 53 - 1]) {
      expect(load(new PickleWriter().raw(0x80, 2).int(n).done())).toBe(n);
    }
    expect(
      load(
        new PickleWriter()
          .raw(0x80, 2)
          .int(2n ** 64n)
          .done(),
      ),
    ).toBe(2n ** 64n);
  });
});
