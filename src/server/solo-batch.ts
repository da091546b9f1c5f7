/**
 * Decode rows for hybrids (Mamba-2 + attention): each sequence keeps its own batch-1 state, and a
 * step runs one forward call per live row. A hybrid's state holds KV caches whose length is the
 * sequence's own, so rows of different lengths cannot be stacked without an attention mask; rows
 * run unbatched instead (correct for any mix of lengths, slower than one stacked call).
 *
 * Same interface as DecodeBatch, so the engine's loop is unchanged: holes, compact(), rowsOf().
 */
import type { ForwardModel } from '../runtime/forward-model.js';
import type { StateSpec } from '../runtime/state.js';
import { stateArrays, stateFromArrays, type StateRow } from '../runtime/state-rows.js';
import type { DecodeRows, StepLogits } from './decode-batch.js';
import { RowSlots } from './row-slots.js';

export class SoloBatch<T> extends RowSlots<T> implements DecodeRows<T> {
  /** Each sequence's own batch-1 state rows. */
  private readonly states = new Map<T, readonly StateRow[]>();
  /** Rows are never copied between steps (kept for metrics parity with DecodeBatch). */
  rowsCopied = 0;

  constructor(private readonly specs: readonly StateSpec[]) {
    super();
  }

  /** Joiners fill holes first; their rows are only read (fed as inputs), never written. */
  add(joiners: readonly { seq: T; rows: readonly StateRow[] }[]): void {
    this.seat(joiners.map((j) => j.seq));
    for (const j of joiners) this.states.set(j.seq, j.rows);
  }

  override remove(seq: T): void {
    super.remove(seq);
    this.states.delete(seq);
  }

  /** Drop the holes (nothing to copy: each row has its own arrays). */
  compact(): void {
    const live = this.slots.filter((s): s is T => s !== undefined);
    this.slots.length = 0;
    this.index.clear();
    for (const seq of live) {
      this.index.set(seq, this.slots.length);
      this.slots.push(seq);
    }
  }

  /** One batch-1 forward call per live row; holes are skipped. */
  async step(model: ForwardModel, ids: number[][]): Promise<StepLogits> {
    const logits = new Map<number, Float32Array>();
    for (const [row, seq] of this.slots.entries()) {
      if (seq === undefined) continue;
      const f = await model.forward([ids[row]!], stateFromArrays(model.backend, this.specs, 1, this.states.get(seq)!));
      this.states.set(seq, stateArrays(f.state));
      logits.set(row, f.logits.at(0, -1));
    }
    return (row) => {
      const l = logits.get(row);
      if (!l) throw new RangeError(`SoloBatch: row ${row} was not stepped (a hole)`);
      return l;
    };
  }

  rowsOf(seq: T): StateRow[] {
    this.rowOf(seq, 'SoloBatch.rowsOf');
    return this.states.get(seq)!.map((r) => r.slice());
  }
}
