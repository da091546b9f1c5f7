/**
 * State rows: a recurrent state as host arrays, one per state tensor in spec order, and the one
 * place where rows are stacked along the batch axis, sliced out of it and scattered into it (the
 * library's generation loop; the server's prefill, decode batch and prefix cache; saved states).
 *
 *   row set (batch 1):  [one array per StateSpec]   (the spec's dtype: float32, or float16 bits)
 *   stacked (batch B):  the same arrays with B rows each, row r at [r·n, (r+1)·n)
 *
 * A KV cache's row size depends on its length (the growing axis) and is read off its array's size,
 * so a hybrid's rows stack only when their caches are equally long.
 */
import type { Backend } from './backend.js';
import { Mamba2State, type HostState, type StateSpec } from './state.js';

/** The data of one state tensor for some rows: float32, or float16 bits. */
export type StateArray = Float32Array | Uint16Array;

/** One row (batch 1) of one state tensor. */
export type StateRow = StateArray;

const elements = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Values per row of a tensor that does not grow (a KV cache: 0). */
export const rowSize = (s: StateSpec): number => elements(s.dims);

const alloc = (like: 'float32' | 'float16' | StateArray, n: number): StateArray =>
  like === 'float16' || like instanceof Uint16Array ? new Uint16Array(n) : new Float32Array(n);

/** The parts end to end in one fresh array (of the first part's type). */
function concat(parts: readonly StateArray[]): StateArray {
  const out = alloc(
    parts[0]!,
    parts.reduce((a, p) => a + p.length, 0),
  );
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Values per row of each array holding exactly `batch` rows (KV caches: read off the size). */
const rowSizes = (specs: readonly StateSpec[], arrays: readonly StateArray[], batch: number): number[] =>
  specs.map((s, i) => (s.grows === undefined ? rowSize(s) : arrays[i]!.length / batch));

/** A fresh (all-zero) row set: a new sequence's state (KV caches empty). */
export function zeroRows(specs: readonly StateSpec[]): StateRow[] {
  return specs.map((s) => alloc(s.type, rowSize(s)));
}

/** Stack row sets into fresh arrays ([n, …] per tensor). KV caches must be equally long. */
export function stackRows(specs: readonly StateSpec[], rowSets: readonly (readonly StateRow[])[]): StateArray[] {
  if (rowSets.length === 0) throw new RangeError('stackRows: expected at least one row set, got none');
  return specs.map((s, i) => {
    const n = rowSets[0]![i]!.length;
    if (rowSets.some((rows) => rows[i]!.length !== n)) {
      const why = s.grows !== undefined ? ' (KV caches of different lengths cannot be stacked)' : '';
      throw new RangeError(`stackRows: tensor ${i} ('${s.input}') differs between the rows${why}`);
    }
    return concat(rowSets.map((rows) => rows[i]!));
  });
}

/** A copy of row `r` of arrays holding `batch` rows (at least `batch` for tensors that do not grow). */
export function sliceRow(specs: readonly StateSpec[], arrays: readonly StateArray[], r: number, batch: number): StateRow[] {
  if (!Number.isInteger(r) || r < 0 || r >= batch) throw new RangeError(`sliceRow: row expected an integer in [0, ${batch}), got ${r}`);
  const sizes = rowSizes(specs, arrays, batch);
  return arrays.map((a, i) => a.slice(r * sizes[i]!, (r + 1) * sizes[i]!));
}

/** Write a row set into row `r` of stacked arrays (tensors that do not grow). */
export function writeRow(specs: readonly StateSpec[], arrays: readonly StateArray[], r: number, rows: readonly StateRow[]): void {
  specs.forEach((s, i) => arrays[i]!.set(rows[i]!, r * rowSize(s)));
}

/** Copy row `from` over row `to` within stacked arrays (tensors that do not grow). */
export function moveRow(specs: readonly StateSpec[], arrays: readonly StateArray[], from: number, to: number): void {
  specs.forEach((s, i) => {
    const n = rowSize(s);
    arrays[i]!.copyWithin(to * n, from * n, (from + 1) * n);
  });
}

/** Fresh arrays of `capacity` rows holding the first `rows` rows of `arrays` (tensors that do not grow). */
export function growRows(specs: readonly StateSpec[], arrays: readonly StateArray[], rows: number, capacity: number): StateArray[] {
  return specs.map((s, i) => {
    const n = rowSize(s);
    const out = alloc(s.type, n * capacity);
    if (rows > 0) out.set(arrays[i]!.subarray(0, rows * n));
    return out;
  });
}

/**
 * Wrap host arrays holding `batch` rows as a Mamba2State (the arrays are used as they are, not
 * copied). A KV cache's length is read off its array's size.
 */
export function stateFromArrays(backend: Backend, specs: readonly StateSpec[], batch: number, arrays: readonly StateArray[]): Mamba2State {
  const tensors = specs.map((s, i) => {
    const dims = [batch, ...s.dims];
    if (s.grows !== undefined)
      dims[s.grows + 1] = arrays[i]!.length / Math.max(1, batch * s.dims.reduce((a, d, k) => (k === s.grows ? a : a * d), 1));
    return backend.tensor(s.type, arrays[i]!, dims);
  });
  return new Mamba2State(backend, specs, batch, tensors);
}

/** A tensor's data as a StateArray; float16 data held in a Float16Array (where one exists) is read as its bits. */
function checkArray(d: unknown, i: number, type: string): StateArray {
  if (d instanceof Float32Array || d instanceof Uint16Array) return d;
  if (type === 'float16' && ArrayBuffer.isView(d) && (d as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT === 2)
    return new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
  throw new TypeError(`state tensor ${i}: expected float32 or float16 data, got ${type}`);
}

/** The host arrays of a state that lives on the CPU, not copied (the model must run with deviceState off). */
export function stateArrays(state: Mamba2State): StateArray[] {
  return state.tensors.map((t, i) => {
    if (t.location !== 'cpu')
      throw new Error(`state tensor ${i}: expected host memory, got location '${t.location}' (load the model with deviceState: false)`);
    return checkArray(t.data, i, t.type);
  });
}

/** A copy of every row of a state, wherever it lives (device tensors are downloaded): one row set per batch row. */
export async function downloadRows(backend: Backend, state: Mamba2State): Promise<StateRow[][]> {
  const arrays = await Promise.all(state.tensors.map(async (t, i) => checkArray(await backend.download(t), i, t.type)));
  return Array.from({ length: state.batch }, (_, r) => sliceRow(state.specs, arrays, r, state.batch));
}

/** Stack host states along the batch axis (same tensors, any batch sizes). */
export function concatHostStates(states: readonly HostState[]): HostState {
  if (states.length === 0) throw new RangeError('concatHostStates: expected at least one state, got none');
  const first = states[0]!;
  const batch = states.reduce((a, s) => a + s.batch, 0);
  const tensors = first.tensors.map((t, i) => {
    for (const s of states) {
      const u = s.tensors[i];
      if (!u || u.name !== t.name || u.dims.slice(1).join(',') !== t.dims.slice(1).join(',')) {
        const why = u && u.name === t.name && t.name.startsWith('past_key') ? ' (KV caches of different lengths cannot be stacked)' : '';
        throw new RangeError(`concatHostStates: tensor ${i} ('${t.name}') differs between the states${why}`);
      }
    }
    return { name: t.name, dims: [batch, ...t.dims.slice(1)], data: concat(states.map((s) => s.tensors[i]!.data)) as Float32Array };
  });
  return { batch, tensors };
}

/** Rows [start, end) of a host state. */
export function sliceHostState(host: HostState, start: number, end = start + 1): HostState {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > host.batch || start >= end) {
    throw new RangeError(`sliceHostState: rows expected 0 ≤ start < end ≤ ${host.batch}, got [${start}, ${end})`);
  }
  const tensors = host.tensors.map((t) => {
    const row = elements(t.dims.slice(1));
    return { name: t.name, dims: [end - start, ...t.dims.slice(1)], data: t.data.slice(start * row, end * row) };
  });
  return { batch: end - start, tensors };
}
