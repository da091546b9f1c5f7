/**
 * Decode rows for hybrids (Mamba-2 + attention): each sequence keeps its own batch-1 state, and a
 * step runs one forward call per live row. A hybrid's state holds KV caches whose length is the
 * sequence's own, so rows of different lengths cannot be stacked without an attention mask; rows
 * run unbatched instead (correct for any mix of lengths, slower than one stacked call).
 *
 * Same interface as DecodeBatch, so the engine's loop is unchanged: holes, compact(), rowsOf().
 */
import type { Mamba2Model } from '../runtime/model.js';
import type { StateSpec } from '../runtime/state.js';
import { type DecodeRows, hostState, stateArrays, type StepLogits } from './decode-batch.js';
import type { StateRow } from './prefix-cache.js';

export class SoloBatch<T> implements DecodeRows<T> {
  private readonly slots: ({ seq: T; rows: readonly StateRow[] } | undefined)[] = [];
  private readonly index = new Map<T, number>();
  /** Rows are never copied between steps (kept for metrics parity with DecodeBatch). */
  rowsCopied = 0;

  constructor(private readonly specs: readonly StateSpec[]) {}

  get size(): number {
    return this.slots.length;
  }

  get live(): number {
    return this.index.size;
  }

  get holes(): number {
    return this.slots.length - this.index.size;
  }

  members(): { seq: T; row: number }[] {
    const out: { seq: T; row: number }[] = [];
    this.slots.forEach((s, row) => s !== undefined && out.push({ seq: s.seq, row }));
    return out;
  }

  has(seq: T): boolean {
    return this.index.has(seq);
  }

  /** Joiners fill holes first; their rows are only read (fed as inputs), never written. */
  add(joiners: readonly { seq: T; rows: readonly StateRow[] }[]): void {
    let next = 0;
    for (let h = 0; h < this.slots.length && next < joiners.length; h++) {
      if (this.slots[h] !== undefined) continue;
      const j = joiners[next++]!;
      this.slots[h] = { seq: j.seq, rows: j.rows };
      this.index.set(j.seq, h);
    }
    for (const j of joiners.slice(next)) {
      this.index.set(j.seq, this.slots.length);
      this.slots.push({ seq: j.seq, rows: j.rows });
    }
  }

  remove(seq: T): void {
    const row = this.index.get(seq);
    if (row === undefined) return;
    this.index.delete(seq);
    this.slots[row] = undefined;
  }

  /** Drop the holes (nothing to copy: each row has its own arrays). */
  compact(): void {
    const live = this.slots.filter((s) => s !== undefined);
    this.slots.length = 0;
    this.index.clear();
    for (const s of live) {
      this.index.set(s.seq, this.slots.length);
      this.slots.push(s);
    }
  }

  /** One batch-1 forward call per live row; holes are skipped. */
  async step(model: Mamba2Model, ids: number[][]): Promise<StepLogits> {
    const logits = new Map<number, Float32Array>();
    for (const [row, s] of this.slots.entries()) {
      if (s === undefined) continue;
      const f = await model.forward([ids[row]!], hostState(model.backend, this.specs, 1, s.rows));
      s.rows = stateArrays(f.state);
      logits.set(row, f.logits.at(0, -1));
    }
    return (row) => {
      const l = logits.get(row);
      if (!l) throw new RangeError(`SoloBatch: row ${row} was not stepped (a hole)`);
      return l;
    };
  }

  rowsOf(seq: T): StateRow[] {
    const row = this.index.get(seq);
    if (row === undefined) throw new RangeError('SoloBatch.rowsOf: the sequence is not in the batch');
    return this.slots[row]!.rows.map((r) => r.slice());
  }
}
