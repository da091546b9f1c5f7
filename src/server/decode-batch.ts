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
 * Per-tensor row sizes come from the model's StateSpecs (batch excluded). A hybrid's KV caches
 * grow with each sequence's length, so its rows do not stack: the engine decodes them one by one
 * (solo-batch.ts, same interface).
 */
import type { Backend } from '../runtime/backend.js';
import type { Mamba2Model } from '../runtime/model.js';
import { hasGrowingState, Mamba2State, type StateSpec } from '../runtime/state.js';
import type { StateRow } from './prefix-cache.js';
import { RowSlots } from './row-slots.js';

export type StateArray = Float32Array | Uint16Array;

const rowSize = (s: StateSpec): number => s.dims.reduce((a, b) => a * b, 1);

/** A fresh (all-zero) row per state tensor. */
export function zeroRows(specs: readonly StateSpec[]): StateRow[] {
  return specs.map((s) => (s.type === 'float16' ? new Uint16Array(rowSize(s)) : new Float32Array(rowSize(s))));
}

/**
 * Wrap host arrays holding `batch` rows as a Mamba2State (the arrays are used as they are). A KV
 * cache's length (its growing axis) is read off its array's size.
 */
export function hostState(backend: Backend, specs: readonly StateSpec[], batch: number, arrays: readonly StateArray[]): Mamba2State {
  const tensors = specs.map((s, i) => {
    const dims = [batch, ...s.dims];
    if (s.grows !== undefined) dims[s.grows + 1] = arrays[i]!.length / Math.max(1, batch * s.dims.reduce((a, d, k) => (k === s.grows ? a : a * d), 1));
    return backend.tensor(s.type, arrays[i]!, dims);
  });
  return new Mamba2State(backend, specs, batch, tensors);
}

/** The host arrays of a state that lives on the CPU (the model must run with deviceState off). */
export function stateArrays(state: Mamba2State): StateArray[] {
  return state.tensors.map((t, i) => {
    if (t.location !== 'cpu') throw new Error(`state tensor ${i}: expected host memory, got location '${t.location}' (load the model with deviceState: false)`);
    const d = t.data;
    if (!(d instanceof Float32Array || d instanceof Uint16Array)) throw new TypeError(`state tensor ${i}: expected float32 or float16 data, got ${t.type}`);
    return d;
  });
}

/** Stack batch-1 row sets into fresh arrays ([n, …] per tensor). */
export function stackRows(specs: readonly StateSpec[], rowSets: readonly (readonly StateRow[])[]): StateArray[] {
  if (hasGrowingState(specs)) throw new Error('stackRows: KV caches of a hybrid do not stack (rows are decoded one by one)');
  return specs.map((s, i) => {
    const n = rowSize(s);
    const out = s.type === 'float16' ? new Uint16Array(n * rowSets.length) : new Float32Array(n * rowSets.length);
    rowSets.forEach((rows, r) => out.set(rows[i]!, r * n));
    return out;
  });
}

/** Copy row `r` out of stacked arrays (a fresh batch-1 row set). */
export function sliceRow(specs: readonly StateSpec[], arrays: readonly StateArray[], r: number): StateRow[] {
  return specs.map((s, i) => {
    const n = rowSize(s);
    return arrays[i]!.slice(r * n, (r + 1) * n);
  });
}

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
  step(model: Mamba2Model, ids: number[][]): Promise<StepLogits>;
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
      this.arrays = this.specs.map((s, i) => {
        const n = this.sizes[i]!;
        const out = s.type === 'float16' ? new Uint16Array(n * total) : new Float32Array(n * total);
        if (old > 0) out.set(this.arrays[i]!.subarray(0, old * n));
        return out;
      });
      this.rowsCopied += old;
    }
    joiners.forEach((j, k) => this.writeRow(rows[k]!, j.rows));
  }

  /** Move the last live rows into the holes and shrink to the live rows. */
  compact(): void {
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
    for (let h = 0; h < this.slots.length; h++) {
      if (this.slots[h] !== undefined) continue;
      const last = this.slots.length - 1;
      const seq = this.slots[last]!;
      this.specs.forEach((_, i) => {
        const n = this.sizes[i]!;
        this.arrays[i]!.copyWithin(h * n, last * n, (last + 1) * n);
      });
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
    return hostState(backend, this.specs, B, this.arrays.map((a, i) => (a.length === B * this.sizes[i]! ? a : a.subarray(0, B * this.sizes[i]!))));
  }

  /** Take the forward call's present state as the batch's state (same rows, same order). */
  adopt(next: Mamba2State): void {
    if (next.batch !== this.slots.length) throw new RangeError(`DecodeBatch.adopt: expected a state of ${this.slots.length} rows, got ${next.batch}`);
    this.arrays = stateArrays(next);
  }

  /** One forward call for every row. */
  async step(model: Mamba2Model, ids: number[][]): Promise<StepLogits> {
    const f = await model.forward(ids, this.state(model.backend));
    this.adopt(f.state);
    return (row) => f.logits.at(row, -1);
  }

  /** A copy of a sequence's rows (e.g. for the prefix cache). */
  rowsOf(seq: T): StateRow[] {
    return sliceRow(this.specs, this.arrays, this.rowOf(seq, 'DecodeBatch.rowsOf'));
  }

  private writeRow(row: number, rows: readonly StateRow[]): void {
    this.specs.forEach((_, i) => this.arrays[i]!.set(rows[i]!, row * this.sizes[i]!));
    this.rowsCopied++;
  }
}
