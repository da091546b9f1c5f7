/** DecodeBatch: joins fill holes then grow, leaves compact by moving rows, states wrap views. */
import { describe, expect, it } from 'vitest';
import { nodeBackend } from '../runtime/node.js';
import type { StateSpec } from '../runtime/state.js';
import { stateArrays } from '../runtime/state-rows.js';
import { DecodeBatch } from './decode-batch.js';

const specs: StateSpec[] = [
  { layer: 0, role: 'conv_state', input: 'past_conv.0', output: 'present_conv.0', type: 'float32', dims: [2, 3] },
  { layer: 0, role: 'ssm_state', input: 'past_ssm.0', output: 'present_ssm.0', type: 'float32', dims: [4] },
];
const rowsOf = (v: number) => [new Float32Array(6).fill(v), new Float32Array(4).fill(v)];
const firstOfRows = (b: DecodeBatch<string>): number[] => {
  const a = stateArrays(b.state(nodeBackend()))[1]!;
  return Array.from({ length: b.size }, (_, r) => a[r * 4]!);
};

describe('DecodeBatch', () => {
  it('keeps each sequence with its own row through joins, leaves and compaction', () => {
    const b = new DecodeBatch<string>(specs);
    b.add([
      { seq: 'a', rows: rowsOf(1) },
      { seq: 'b', rows: rowsOf(2) },
      { seq: 'c', rows: rowsOf(3) },
    ]);
    expect(firstOfRows(b)).toEqual([1, 2, 3]);
    b.remove('a');
    expect([b.size, b.live, b.holes]).toEqual([3, 2, 1]);
    b.add([
      { seq: 'd', rows: rowsOf(4) },
      { seq: 'e', rows: rowsOf(5) },
    ]); // hole first, then grow
    expect(firstOfRows(b)).toEqual([4, 2, 3, 5]);
    b.remove('b');
    b.remove('e');
    b.compact();
    expect(b.size).toBe(2);
    expect(
      b
        .members()
        .map((m) => m.seq)
        .sort(),
    ).toEqual(['c', 'd']);
    expect(b.rowsOf('c')[1]![0]).toBe(3);
    expect(b.rowsOf('d')[1]![0]).toBe(4);
    const st = b.state(nodeBackend());
    expect(st.batch).toBe(2);
    expect(st.tensors[0]!.dims).toEqual([2, 2, 3]);
  });

  it('empties completely', () => {
    const b = new DecodeBatch<string>(specs);
    b.add([{ seq: 'a', rows: rowsOf(1) }]);
    b.remove('a');
    b.compact();
    expect(b.size).toBe(0);
    expect(() => b.state(nodeBackend())).toThrow(/empty/);
  });
});
