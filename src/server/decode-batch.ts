/**
 * The decode batch: the recurrent states of all decoding sequences stacked along the batch axis,
 * kept on the host between steps so that one forward call per step serves every sequence.
 *
 *   step k:   state [B, …] (rows = slots) ──forward([[last id] per row])──▶ present [B, …]
 *             the present arrays become the batch's arrays as they are: no copy per step.
 *   leave:    the row becomes a hole (fed, result ignored) until compact() moves the last live
 *             rows into the holes and the batch shrinks to a prefix view (copies = rows moved).
 *   join:     holes are filled first (one row copied each); the rest grow the batch (one copy of
 *             the live rows plus the new ones).
 *
 * Rows are grown, written, moved and copied out by state-rows.ts. A hybrid's KV caches grow with
 * each sequence's length, so its rows do not stack: the engine decodes them one by one
 * (solo-batch.ts, same interface).
 */
import type { Backend } from '../runtime/backend.js';
import type { ForwardModel } from '../runtime/forward-model.js';
import type { Mamba2State, StateSpec } from '../runtime/state.js';
import {
  growRows,
  moveRow,
  rowSize,
  sliceRow,
  stateArrays,
  stateFromArrays,
  writeRow,
  type StateArray,
  type StateRow,
} from '../runtime/state-rows.js';
import { RowSlots } from './row-slots.js';

/** Logits of the last position per row of one decode step. */
export type StepLogits = (row: number) => Float32Array;

/** The decode rows the engine drives: DecodeBatch (stacked) or SoloBatch (one call per row, hybrids). */
export interface DecodeRows<T> {
  readonly size: number;
  readonly live: number;
  readonly holes: number;
  rowsCopied: number;
  members(): { seq: T; row: number }[];
  has(seq: T): boolean;
  add(joiners: readonly { seq: T; rows: readonly StateRow[] }[]): void;
  remove(seq: T): void;
  compact(): void;
  rowsOf(seq: T): StateRow[];
  /** One step: row r is fed ids[r] (holes included); the rows' states advance. */
  step(model: ForwardModel, ids: number[][]): Promise<StepLogits>;
}

export class DecodeBatch<T> extends RowSlots<T> implements DecodeRows<T> {
  private readonly sizes: number[];
  /** Arrays with at least `slots.length` rows each (views of exactly that many are fed). */
  private arrays: StateArray[] = [];
  /** Rows copied by joins, leaves and compaction (for metrics). */
  rowsCopied = 0;

  constructor(private readonly specs: readonly StateSpec[]) {
    super();
    this.sizes = specs.map(rowSize);
  }

  /** Sequences join with their batch-1 state rows (copied in; the caller may drop them). */
  add(joiners: readonly { seq: T; rows: readonly StateRow[] }[]): void {
    const old = this.slots.length;
    const rows = this.seat(joiners.map((j) => j.seq));
    const total = this.slots.length;
    if (total > old) {
      // grow every array once; the old rows move with it
      this.arrays = growRows(this.specs, this.arrays, old, total);
      this.rowsCopied += old;
    }
    joiners.forEach((j, k) => this.put(rows[k]!, j.rows));
  }

  /** Move the last live rows into the holes and shrink to the live rows. */
  compact(): void {
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
    for (let h = 0; h < this.slots.length; h++) {
      if (this.slots[h] !== undefined) continue;
      const last = this.slots.length - 1;
      const seq = this.slots[last]!;
      moveRow(this.specs, this.arrays, last, h);
      this.rowsCopied++;
      this.slots[h] = seq;
      this.index.set(seq, h);
      this.slots.pop();
      while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
    }
    if (this.slots.length === 0) this.arrays = [];
  }

  /** The batch's state for the next forward call (views of the arrays; nothing is copied). */
  state(backend: Backend): Mamba2State {
    const B = this.slots.length;
    if (B === 0) throw new Error('DecodeBatch.state: the batch is empty');
    return stateFromArrays(
      backend,
      this.specs,
      B,
      this.arrays.map((a, i) => (a.length === B * this.sizes[i]! ? a : a.subarray(0, B * this.sizes[i]!))),
    );
  }

  /** Take the forward call's present state as the batch's state (same rows, same order). */
  adopt(next: Mamba2State): void {
    if (next.batch !== this.slots.length)
      throw new RangeError(`DecodeBatch.adopt: expected a state of ${this.slots.length} rows, got ${next.batch}`);
    this.arrays = stateArrays(next);
  }

  /** One forward call for every row. */
  async step(model: ForwardModel, ids: number[][]): Promise<StepLogits> {
    const f = await model.forward(ids, this.state(model.backend));
    this.adopt(f.state);
    return (row) => f.logits.at(row, -1);
  }

  /** A copy of a sequence's rows (e.g. for the prefix cache). */
  rowsOf(seq: T): StateRow[] {
    return sliceRow(this.specs, this.arrays, this.rowOf(seq, 'DecodeBatch.rowsOf'), this.slots.length);
  }

  private put(row: number, rows: readonly StateRow[]): void {
    writeRow(this.specs, this.arrays, row, rows);
    this.rowsCopied++;
  }
}
