/**
 * Recurrent state: which graph inputs hold it (checked against the session's own metadata and the
 * model's io table), zero states for any batch, device-resident state between steps, and a host
 * copy that can be saved to bytes (state-io.ts). Stacking and slicing rows: state-rows.ts.
 *
 * Per layer i (src/package/io.ts):  past_conv.{i} [B, convDim, K-1]   past_ssm.{i} [B, H, P, N]
 * An attention layer of a hybrid:  past_key.{i} / past_value.{i} [B, Hkv, T, hd] (T grows by every
 * call's tokens; a fresh state has T = 0, empty tensors) (+ past_conv.{i} for an MHA with conv).
 */
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import type { ModelMeta } from '../package/meta.js';
import type { Dim } from '../onnx/shape.js';
import { IO_NAMES, ioTable } from '../package/io.js';
import { statefulLayers } from '../package/layers.js';
import type { Backend, RtTensor, ValueInfo } from './backend.js';

export type StateRole = 'conv_state' | 'ssm_state' | 'key_cache' | 'value_cache';

/** One state tensor of the graph: its past_/present_ names and per-row dims (batch excluded). */
export interface StateSpec {
  readonly layer: number;
  readonly role: StateRole;
  readonly input: string;
  readonly output: string;
  readonly type: 'float32' | 'float16';
  /** Per-row dims; a KV cache has 0 at its growing axis. */
  readonly dims: readonly number[];
  /** KV caches: the axis of `dims` that grows with the tokens seen (their length differs per state). */
  readonly grows?: number;
}

/** True when the model keeps KV caches (a hybrid): states of different lengths cannot be stacked. */
export const hasGrowingState = (specs: readonly StateSpec[]): boolean => specs.some((s) => s.grows !== undefined);

/** The graph does not match its mamba2-onnx.json, or the json does not match its config. */
export class ModelMismatchError extends Error {
  override readonly name = 'ModelMismatchError';
  constructor(readonly problems: readonly string[]) {
    super(`model.onnx does not match mamba2-onnx.json:\n  - ${problems.join('\n  - ')}`);
  }
}

type MetaDim = Dim;
/** `[batch, 64, 3]`. */
const fmt = (shape: readonly MetaDim[]): string => `[${shape.join(', ')}]`;

/** Compare one io-table entry with the session's metadata; push readable problems. */
function checkValue(
  problems: string[],
  kind: 'input' | 'output',
  name: string,
  dtype: string,
  shape: readonly MetaDim[],
  session: ReadonlyMap<string, ValueInfo>,
): void {
  const got = session.get(name);
  if (!got) {
    problems.push(`${kind} '${name}' is in mamba2-onnx.json but not in the graph (graph ${kind}s: ${[...session.keys()].join(', ')})`);
    return;
  }
  if (got.type !== dtype) problems.push(`${kind} '${name}': dtype expected ${dtype} (json), got ${got.type} (graph)`);
  const same =
    got.shape.length === shape.length &&
    shape.every((d, i) => (typeof d === 'number' ? got.shape[i] === d : typeof got.shape[i] === 'string'));
  if (!same) problems.push(`${kind} '${name}': shape expected ${fmt(shape)} (json), got ${fmt(got.shape)} (graph)`);
}

/**
 * The state tensors of a session, checked three ways: graph metadata vs the meta's io table vs the
 * shapes its config implies. Any mismatch is one ModelMismatchError listing every problem.
 */
export function stateSpecs(meta: ModelMeta, inputs: readonly ValueInfo[], outputs: readonly ValueInfo[]): StateSpec[] {
  const c = meta.config;
  const problems: string[] = [];
  const ins = new Map(inputs.map((v) => [v.name, v]));
  const outs = new Map(outputs.map((v) => [v.name, v]));
  const specs: StateSpec[] = [];
  for (const e of meta.io.inputs) checkValue(problems, 'input', e.name, e.dtype, e.shape, ins);
  for (const e of meta.io.outputs) checkValue(problems, 'output', e.name, e.dtype, e.shape, outs);
  const known = new Set(meta.io.inputs.map((e) => e.name));
  for (const v of inputs) if (!known.has(v.name)) problems.push(`graph input '${v.name}' is not in mamba2-onnx.json`);

  const vocab = outs.get(IO_NAMES.logits)?.shape[2];
  if (typeof vocab === 'number' && vocab !== c.vocabSize) {
    problems.push(`output 'logits': vocab dim expected config.vocabSize = ${c.vocabSize}, got ${vocab}`);
  }
  // per-row shapes the config implies (io.ts); a symbolic dim there is a KV cache's growing axis
  const implied = new Map(ioTable(c).inputs.map((e) => [e.name, e.shape.slice(1)]));
  const STATE_ROLES: readonly string[] = ['conv_state', 'ssm_state', 'key_cache', 'value_cache'];
  for (const e of meta.io.inputs) {
    if (!STATE_ROLES.includes(e.role)) continue;
    const layer = e.layer ?? -1;
    const output = e.name.replace(/^past_/, 'present_');
    const dims = e.shape.slice(1);
    const want = implied.get(e.name) ?? [];
    const grows = want.findIndex((d) => typeof d !== 'number');
    const same = dims.length === want.length && dims.every((d, k) => (k === grows ? typeof d === 'string' : d === want[k]));
    if (!same) {
      problems.push(`input '${e.name}': per-row shape expected [${want.join(', ')}] from the config, got ${fmt(dims)}`);
      continue;
    }
    if (e.dtype !== 'float32' && e.dtype !== 'float16') {
      problems.push(`input '${e.name}': state dtype expected float32 or float16, got ${e.dtype}`);
      continue;
    }
    if (!meta.io.outputs.some((o) => o.name === output)) problems.push(`input '${e.name}' has no '${output}' twin among the outputs`);
    const rowDims = dims.map((d) => (typeof d === 'number' ? d : 0));
    specs.push({ layer, role: e.role as StateRole, input: e.name, output, type: e.dtype, dims: rowDims, ...(grows >= 0 ? { grows } : {}) });
  }
  const layers = new Set(specs.map((s) => s.layer));
  const stateful = statefulLayers(c).length; // feed-forward layers keep no state
  if (problems.length === 0 && layers.size !== stateful) {
    problems.push(
      `states: expected some for every mixer layer (${stateful} of config.nLayer = ${c.nLayer}), got ${layers.size} layers with states`,
    );
  }
  if (problems.length > 0) throw new ModelMismatchError(problems);
  return specs;
}

const elements = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** A host copy of a state: float32 data per tensor (fp16 states widened), full dims with batch. */
export interface HostState {
  readonly batch: number;
  readonly tensors: readonly { readonly name: string; readonly dims: readonly number[]; readonly data: Float32Array }[];
}

/**
 * The recurrent state of a batch: one tensor per StateSpec, possibly living on the device (WebGPU).
 * States are immutable values: a forward pass returns a new state and leaves its input untouched,
 * so one state can be continued several times (prefix reuse). Call dispose() to free device memory.
 */
export class Mamba2State {
  private disposedFlag = false;

  constructor(
    private readonly backend: Backend,
    readonly specs: readonly StateSpec[],
    readonly batch: number,
    private readonly values: readonly RtTensor[],
  ) {
    if (values.length !== specs.length) throw new RangeError(`Mamba2State: expected ${specs.length} tensors, got ${values.length}`);
  }

  /** The tensors in spec order (for feeding). Throws once disposed. */
  get tensors(): readonly RtTensor[] {
    if (this.disposedFlag) throw new Error('Mamba2State: this state was disposed');
    return this.values;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** True when at least one tensor lives in device memory. */
  get onDevice(): boolean {
    return this.values.some((t) => t.location !== 'cpu');
  }

  /** Copy to the host as float32 (downloads device tensors). */
  async toHost(): Promise<HostState> {
    const tensors = await Promise.all(
      this.tensors.map(async (t, i) => {
        const spec = this.specs[i]!;
        const raw = (await this.backend.download(t)) as Float32Array | Uint16Array;
        return {
          name: spec.input,
          dims: [...t.dims],
          data: spec.type === 'float16' ? widen(raw as Uint16Array) : Float32Array.from(raw as Float32Array),
        };
      }),
    );
    return { batch: this.batch, tensors };
  }

  /**
   * Give the tensors up without freeing them (they become another state's storage): this state
   * reads as disposed afterwards. Throws when already disposed.
   */
  surrender(): readonly RtTensor[] {
    const v = this.tensors;
    this.disposedFlag = true;
    return v;
  }

  /** Free the tensors (device memory on WebGPU). Safe to call twice. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    for (const t of this.values) t.dispose();
  }
}

/** An all-zero state (a fresh sequence) for `batch` rows. */
export function zeroState(backend: Backend, specs: readonly StateSpec[], batch: number): Mamba2State {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`zeroState: batch expected an integer ≥ 1, got ${batch}`);
  const tensors = specs.map((s) => {
    const dims = [batch, ...s.dims];
    const n = elements(dims);
    return s.type === 'float16'
      ? backend.tensor('float16', new Uint16Array(n), dims)
      : backend.tensor('float32', new Float32Array(n), dims);
  });
  return new Mamba2State(backend, specs, batch, tensors);
}

/** Make a host state usable by a model: names and dims must match its specs exactly. */
export function stateFromHost(backend: Backend, specs: readonly StateSpec[], host: HostState): Mamba2State {
  const problems: string[] = [];
  if (host.tensors.length !== specs.length) {
    problems.push(`expected ${specs.length} tensors (${specs.map((s) => s.input).join(', ')}), got ${host.tensors.length}`);
  }
  let length: number | undefined; // KV cache length, the same in every growing tensor
  specs.forEach((s, i) => {
    const t = host.tensors[i];
    if (!t) return;
    const dims = [host.batch, ...s.dims];
    if (s.grows !== undefined && t.name === s.input && t.dims.length === dims.length) {
      const got = t.dims[s.grows + 1]!;
      if (length !== undefined && got !== length)
        problems.push(`'${s.input}': KV cache length expected ${length} (as the other caches), got ${got}`);
      length ??= got;
      dims[s.grows + 1] = got;
    }
    if (t.name !== s.input) problems.push(`tensor ${i}: expected name '${s.input}', got '${t.name}'`);
    else if (t.dims.join(',') !== dims.join(','))
      problems.push(`'${s.input}': expected dims [${dims.join(', ')}], got [${t.dims.join(', ')}]`);
    else if (t.data.length !== elements(dims)) problems.push(`'${s.input}': expected ${elements(dims)} values, got ${t.data.length}`);
  });
  if (problems.length > 0) throw new RangeError(`state does not fit this model:\n  - ${problems.join('\n  - ')}`);
  const tensors = specs.map((s, i) => {
    const t = host.tensors[i]!;
    return s.type === 'float16'
      ? backend.tensor('float16', narrow(t.data), t.dims)
      : backend.tensor('float32', Float32Array.from(t.data), t.dims);
  });
  return new Mamba2State(backend, specs, host.batch, tensors);
}

function widen(bits: Uint16Array): Float32Array {
  const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = getFloat16(view, i * 2, true);
  return out;
}

function narrow(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) setFloat16(view, i * 2, values[i]!, true);
  return out;
}
