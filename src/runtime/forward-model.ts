/**
 * ForwardModel: the seam between the decoding code and a model backend. The generation loop
 * (generate.ts) and the server's engine are written against this interface only, never against a
 * class: Mamba2Model (one ONNX Runtime session through onnxruntime-node or -web) implements it
 * today, and another backend (e.g. ONNX Runtime through its C API) plugs in by implementing it too.
 *
 *   forward(ids [B, L], state [B, …]) ──▶ logits [B, L, V], state after the ids (input untouched)
 *
 * Also here: the types forward() takes and returns (ForwardIds, Logits, ForwardResult).
 */
import type { Mamba2Config } from '../package/config.js';
import type { Backend } from './backend.js';
import type { Mamba2State, StateSpec } from './state.js';
import type { TextTokenizer } from './tokenizer.js';

/** Logits of one forward pass: [batch, sequence, vocab] (vocab = config.vocabSize, padded rows included). */
export class Logits {
  constructor(
    readonly data: Float32Array,
    readonly dims: readonly [number, number, number],
  ) {}

  /** The row of logits for batch row `b` at position `t` (negative t counts from the end). */
  at(b: number, t = -1): Float32Array {
    const [B, L, V] = this.dims;
    const tt = t < 0 ? L + t : t;
    if (!Number.isInteger(b) || b < 0 || b >= B || !Number.isInteger(tt) || tt < 0 || tt >= L) {
      throw new RangeError(`logits.at: expected 0 ≤ b < ${B} and -${L} ≤ t < ${L}, got b = ${b}, t = ${t}`);
    }
    const off = (b * L + tt) * V;
    return this.data.subarray(off, off + V);
  }
}

export interface ForwardResult {
  logits: Logits;
  /** The state after these tokens; the input state is left as it was. */
  state: Mamba2State;
}

/** Token ids for forward(): rows of equal length, one row, or int64 data with explicit dims. */
export type ForwardIds =
  | readonly (readonly number[])[]
  | readonly number[]
  | BigInt64Array
  | { data: BigInt64Array; dims: readonly [number, number] };

/** What decoding needs from a model: the backend seam (see the file comment). */
export interface ForwardModel {
  /** The config fields decoding reads (vocab bounds, EOS, the chunk size for prefill budgets). */
  readonly config: Pick<Mamba2Config, 'vocabSize' | 'realVocabSize' | 'eosTokenId' | 'chunkSize'>;
  readonly tokenizer: TextTokenizer | undefined;
  /** The state tensors, in the order states hold them. */
  readonly specs: readonly StateSpec[];
  /** Makes the host tensors of states built from arrays (state-rows.ts) and downloads device ones. */
  readonly backend: Backend;
  /** True for hybrids: the state holds KV caches that grow with the tokens seen (rows of unequal length do not stack). */
  readonly hasKvCache: boolean;
  /** True when states stay in device memory between steps. */
  readonly deviceState: boolean;
  /**
   * Run `ids` continuing `state` (a fresh state when absent): all positions' logits and the new
   * state; `state` is neither changed nor disposed. `opts.into`: a state the caller gives up (it
   * is consumed), whose buffers may receive the new state when `writesStateInPlace(batch)`.
   */
  forward(ids: ForwardIds, state?: Mamba2State, opts?: { into?: Mamba2State }): Promise<ForwardResult>;
  /** Check a state belongs to this model and has `batch` rows (errors name `what`). */
  checkState(state: unknown, batch: number, what: string): asserts state is Mamba2State;
  /** Whether forward(…, { into }) writes a `batch`-row state in place: callers keep a spare state only then. */
  writesStateInPlace(batch: number): boolean;
  /** Token ids of `text`; a clear error when the model has no tokenizer. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
}
