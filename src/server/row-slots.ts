/**
 * The row bookkeeping both decode-row kinds share (DecodeBatch stacks states, SoloBatch keeps one
 * per sequence): which sequence sits in which row, holes left by sequences that finished, and
 * joiners filling holes before new rows are appended.
 */
export abstract class RowSlots<T> {
  protected readonly slots: (T | undefined)[] = [];
  protected readonly index = new Map<T, number>();

  /** Rows fed to the model (holes included). */
  get size(): number {
    return this.slots.length;
  }

  /** Sequences in the batch. */
  get live(): number {
    return this.index.size;
  }

  get holes(): number {
    return this.slots.length - this.index.size;
  }

  /** The sequences with their row, in row order. */
  members(): { seq: T; row: number }[] {
    const out: { seq: T; row: number }[] = [];
    this.slots.forEach((seq, row) => seq !== undefined && out.push({ seq, row }));
    return out;
  }

  has(seq: T): boolean {
    return this.index.has(seq);
  }

  /** The sequence leaves: its row becomes a hole (still fed until compact()). */
  remove(seq: T): void {
    const row = this.index.get(seq);
    if (row === undefined) return;
    this.index.delete(seq);
    this.slots[row] = undefined;
  }

  /** Seats `seqs`: holes first, then new rows at the end. Returns each one's row, in order. */
  protected seat(seqs: readonly T[]): number[] {
    const rows: number[] = [];
    let next = 0;
    for (let h = 0; h < this.slots.length && next < seqs.length; h++) {
      if (this.slots[h] !== undefined) continue;
      rows.push(h);
      this.slots[h] = seqs[next]!;
      this.index.set(seqs[next++]!, h);
    }
    for (const seq of seqs.slice(next)) {
      rows.push(this.slots.length);
      this.index.set(seq, this.slots.length);
      this.slots.push(seq);
    }
    return rows;
  }

  /** The row of `seq`, or a RangeError naming `who`. */
  protected rowOf(seq: T, who: string): number {
    const row = this.index.get(seq);
    if (row === undefined) throw new RangeError(`${who}: the sequence is not in the batch`);
    return row;
  }
}
