/**
 * Mamba2Model: one ONNX Runtime session over an exported model, with its recurrent state, a
 * forward pass and generation.
 *
 *   const m = await Mamba2Model.load('out/tiny', { ep: 'webgpu,cpu' });
 *   const r = await m.generate('Hello', { maxNewTokens: 20 });
 *   for await (const { text } of m.stream('Hello', { temperature: 0.8, seed: 1 })) process.stdout.write(text);
 */
import type { Mamba2Config } from '../package/config.js';
import { IO_NAMES } from '../package/io.js';
import type { ModelMeta } from '../package/meta.js';
import {
  checkMemoryPolicy,
  describe,
  parseEpList,
  type Backend,
  type MemoryPolicy,
  type BackendSession,
  type EpFallback,
  type EpName,
  type RtTensor,
} from './backend.js';
import type { StreamChunk } from './decoder.js';
import { Logits, type ForwardIds, type ForwardModel, type ForwardResult } from './forward-model.js';
import { generateRows, type GenerateResult } from './generate.js';
import { checkIds, type GenerateOptions } from './options.js';
import { deserializeState, serializeState } from './state-io.js';
import { hasGrowingState, Mamba2State, stateFromHost, stateSpecs, zeroState, type StateSpec } from './state.js';
import type { TextTokenizer } from './tokenizer.js';
import type { BackendName } from './capi/select.js';

export interface LoadOptions {
  /** EPs to try in order: 'cpu' (default), 'webgpu', 'cuda', e.g. 'webgpu,cpu' or ['cuda', 'cpu']. */
  ep?: string | readonly string[];
  /** Keep present_* states on the device between steps where the EP allows it (default true). */
  deviceState?: boolean;
  /** CPU EP threads (default: ORT's choice). */
  intraOpNumThreads?: number;
  /** CPU EP host memory: 'fast' (default) or 'lean' (≈ weights + fixed overhead, slower prefill; see SessionCreateOptions.memory). */
  memory?: MemoryPolicy;
  /** ORT log severity 0–4 (default 3: errors). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Another backend (e.g. onnxruntime-web), or one by name: 'node' (onnxruntime-node, the default) or 'capi' (ONNX Runtime's C API, Node only). */
  backend?: Backend | BackendName;
}

export interface CreateOptions extends LoadOptions {
  /** model.onnx path (external data is found beside it) or its bytes. */
  model: string | Uint8Array;
  meta: ModelMeta;
  tokenizer?: TextTokenizer;
}

/** One ONNX Runtime session as a ForwardModel (forward-model.ts), with generation on top. */
export class Mamba2Model implements ForwardModel {
  readonly specs: readonly StateSpec[];
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  private constructor(
    readonly backend: Backend,
    private readonly session: BackendSession,
    readonly meta: ModelMeta,
    readonly tokenizer: TextTokenizer | undefined,
  ) {
    this.specs = stateSpecs(meta, session.inputs, session.outputs);
  }

  /** Load an exported model directory (onnxruntime-node unless `opts.backend` says otherwise). */
  static async load(dir: string, opts: LoadOptions = {}): Promise<Mamba2Model> {
    const { readModelDir } = await import('#node-backend');
    const files = await readModelDir(dir);
    return Mamba2Model.create({ ...opts, model: files.modelPath, meta: files.meta, tokenizer: files.tokenizer });
  }

  /** Build from parts already in hand (a browser loader, tests). */
  static async create(opts: CreateOptions): Promise<Mamba2Model> {
    const eps = parseEpList(opts.ep ?? 'cpu', 'opts.ep');
    const backend =
      typeof opts.backend === 'string'
        ? await (await import('#node-backend')).namedBackend(opts.backend)
        : (opts.backend ?? (await import('#node-backend')).nodeBackend());
    const deviceOutputs = opts.deviceState === false ? [] : opts.meta.io.outputs.filter((o) => o.role !== 'logits').map((o) => o.name);
    const session = await backend.createSession(opts.model, {
      eps,
      deviceOutputs,
      ...(opts.logSeverityLevel !== undefined ? { logSeverityLevel: opts.logSeverityLevel } : {}),
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
      ...(opts.memory !== undefined ? { memory: checkMemoryPolicy(opts.memory) } : {}),
    });
    try {
      return new Mamba2Model(backend, session, opts.meta, opts.tokenizer);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  get config(): Mamba2Config {
    return this.meta.config;
  }

  /** The EP the session really runs on. */
  get ep(): EpName {
    return this.session.ep;
  }

  /** EPs asked for before `ep` that failed, with the reason (report these to the user). */
  get fallbacks(): readonly EpFallback[] {
    return this.session.fallbacks;
  }

  /** True when states stay in device memory between steps. */
  get deviceState(): boolean {
    return this.specs.every((s) => this.session.deviceOutputs.has(s.output));
  }

  /** True for hybrids: the state holds KV caches that grow with the tokens seen (rows of unequal length do not stack). */
  get hasKvCache(): boolean {
    return hasGrowingState(this.specs);
  }

  /** A fresh (all-zero) state for `batch` rows. */
  zeroState(batch = 1): Mamba2State {
    return zeroState(this.backend, this.specs, batch);
  }

  /** Token ids of `text`; a clear error when the model came without a tokenizer. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    if (!this.tokenizer) {
      throw new TypeError(
        'prompt: this model directory has no tokenizer.json, so it accepts token ids only (pass number[], or --ids 1,2,3)',
      );
    }
    return this.tokenizer.encode(text, opts);
  }

  /** Text of `ids` (special tokens skipped); '' without a tokenizer. */
  decode(ids: readonly number[]): string {
    return this.tokenizer ? this.tokenizer.decode(ids) : '';
  }

  /**
   * Run the graph on `ids` continuing `state` (a fresh state when absent). Returns all positions'
   * logits and the new state; `state` itself is not changed or disposed.
   *
   * `opts.into`: a state the caller gives up (it is consumed: disposed, or its host buffers receive
   * the new state in place when `writesStateInPlace(batch)`, which saves ORT's allocation of the
   * state outputs; the generation loop passes the state of two steps ago). Never `state` itself.
   */
  async forward(ids: ForwardIds, state?: Mamba2State, opts: { into?: Mamba2State } = {}): Promise<ForwardResult> {
    const { data, dims } = this.idsTensor(ids);
    const [B] = dims;
    if (state !== undefined) this.checkState(state, B, 'state');
    if (opts.into !== undefined && (!(opts.into instanceof Mamba2State) || opts.into === state)) {
      throw new TypeError(
        `opts.into: expected a Mamba2State other than \`state\`, got ${opts.into === state ? 'the same state' : describe(opts.into)}`,
      );
    }
    const own = state === undefined ? this.zeroState(B) : undefined;
    const s = state ?? own!;
    try {
      return await this.exclusive(async () => {
        const feeds: Record<string, RtTensor> = { [IO_NAMES.inputIds]: this.backend.tensor('int64', data, dims) };
        s.tensors.forEach((t, i) => (feeds[this.specs[i]!.input] = t));
        const target = this.writableInto(opts.into, s);
        const out = await this.session.run(
          feeds,
          target ? Object.fromEntries(this.specs.map((sp, i) => [sp.output, target[i]!])) : undefined,
        );
        const logitsT = out[IO_NAMES.logits]!;
        const logits = (await this.backend.download(logitsT)) as Float32Array;
        // with a target, ORT wrote the state into its buffers (onnxruntime-node also returns copies: unused)
        const next = new Mamba2State(this.backend, this.specs, B, target ?? this.specs.map((sp) => out[sp.output]!));
        return { logits: new Logits(logits, [B, logitsT.dims[1]!, logitsT.dims[2]!]), state: next };
      });
    } finally {
      own?.dispose();
      opts.into?.dispose(); // consumed either way (a no-op once surrendered)
    }
  }

  /**
   * Whether forward(…, { into }) writes a `batch`-row state in place: host outputs on a backend that
   * writes pre-allocated outputs, states that do not grow, and a single row only (it speeds up CPU
   * decode at batch 1 and slows larger batches, since onnxruntime-node 1.30 also returns a copy of
   * each pre-allocated output; measurements in BENCHMARKS.md, "Pre-allocated state outputs").
   * Callers keep a spare state only when this is true.
   */
  writesStateInPlace(batch: number): boolean {
    return (
      batch === 1 && this.session.writesInto && !this.hasKvCache && !this.specs.some((sp) => this.session.deviceOutputs.has(sp.output))
    );
  }

  /**
   * The host tensors of `into` when the session can write the new state into them: same batch and
   * shapes as `s` (states that do not grow), all on the host, outputs returned to the host (not kept
   * on the device), and a backend that writes in place.
   */
  private writableInto(into: Mamba2State | undefined, s: Mamba2State): readonly RtTensor[] | undefined {
    if (!into || into.disposed || into.batch !== s.batch || !this.writesStateInPlace(s.batch)) return undefined;
    const src = s.tensors;
    const ok = into.tensors.every(
      (t, i) =>
        t.location === 'cpu' &&
        t.type === src[i]!.type &&
        t.dims.length === src[i]!.dims.length &&
        t.dims.every((d, k) => d === src[i]!.dims[k]),
    );
    return ok ? into.surrender() : undefined;
  }

  /** Generate from one prompt (text or token ids). */
  async generate(prompt: string | readonly number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    const it = generateRows(this, [prompt], opts, 'prompt');
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value[0]!;
    }
  }

  /** Generate from several prompts at once (rows of unequal length are prefilled one by one). */
  async generateBatch(prompts: readonly (string | readonly number[])[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    if (!Array.isArray(prompts)) throw new TypeError(`prompts: expected an array of prompts, got ${describe(prompts)}`);
    if (prompts.length === 0) throw new RangeError('prompts: expected at least one prompt, got an empty array');
    const it = generateRows(this, prompts, opts, 'prompts');
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * Stream tokens and text as they are generated. Text never splits a character and never shows
   * a stop string. The iterator's return value is the GenerateResult.
   */
  async *stream(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<StreamChunk, GenerateResult, undefined> {
    const it = generateRows(this, [prompt], opts, 'prompt');
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return r.value[0]!;
        yield { tokenId: r.value.tokenId, text: r.value.text, index: r.value.index };
      }
    } finally {
      await it.return([]); // the consumer stopped early: let generateRows free its state
    }
  }

  /** Bytes of a state (downloaded from the device if needed); see state-io.ts for the format. */
  async saveState(state: Mamba2State): Promise<Uint8Array> {
    this.checkState(state, state.batch, 'state');
    return serializeState(await state.toHost());
  }

  /** A state from bytes written by saveState (validated, and checked against this model). */
  loadState(bytes: Uint8Array): Mamba2State {
    return stateFromHost(this.backend, this.specs, deserializeState(bytes));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.queue.catch(() => undefined);
    await this.session.release();
  }

  /** Runs one session call at a time (WebGPU IO binding is per session). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.released) return Promise.reject(new Error('Mamba2Model: the model was released'));
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Check a state belongs to this model and has `batch` rows. */
  checkState(state: unknown, batch: number, what: string): asserts state is Mamba2State {
    if (!(state instanceof Mamba2State)) throw new TypeError(`${what}: expected a Mamba2State, got ${describe(state)}`);
    if (state.disposed) throw new Error(`${what}: the state was disposed`);
    if (
      state.specs.length !== this.specs.length ||
      state.specs.some((s, i) => s.input !== this.specs[i]!.input || s.dims.join() !== this.specs[i]!.dims.join())
    ) {
      throw new RangeError(`${what}: the state belongs to a model with different state tensors`);
    }
    if (state.batch !== batch) throw new RangeError(`${what}: batch expected ${batch} (rows of ids), got ${state.batch}`);
  }

  private idsTensor(ids: ForwardIds): { data: BigInt64Array; dims: [number, number] } {
    const V = this.config.vocabSize;
    let data: BigInt64Array;
    let dims: [number, number];
    if (ids instanceof BigInt64Array) {
      data = ids;
      dims = [1, ids.length];
    } else if (Array.isArray(ids)) {
      const rows = (ids.length > 0 && Array.isArray(ids[0]) ? ids : [ids]) as readonly unknown[];
      if (rows.length === 0) throw new RangeError('ids: expected at least one row of token ids, got an empty array');
      const L = Array.isArray(rows[0]) ? rows[0].length : -1;
      data = new BigInt64Array(rows.length * Math.max(L, 0));
      rows.forEach((row, b) => {
        if (!Array.isArray(row)) throw new TypeError(`ids[${b}]: expected an array of token ids, got ${describe(row)}`);
        if (row.length !== L) throw new RangeError(`ids[${b}]: rows must have equal length, expected ${L}, got ${row.length}`);
        if (L > 0) checkIds(row, V, `ids[${b}]`).forEach((id, t) => (data[b * L + t] = BigInt(id)));
      });
      dims = [rows.length, L];
    } else if (ids && typeof ids === 'object' && 'data' in ids && ids.data instanceof BigInt64Array) {
      data = ids.data;
      dims = [ids.dims[0], ids.dims[1]];
      if (!dims.every((d) => Number.isInteger(d) && d >= 1) || dims[0] * dims[1] !== data.length) {
        throw new RangeError(`ids.dims: expected [batch, sequence] with batch·sequence = ${data.length}, got [${dims.join(', ')}]`);
      }
    } else {
      throw new TypeError(`ids: expected number[][], number[], BigInt64Array or {data, dims}, got ${describe(ids)}`);
    }
    if (dims[1] < 1) throw new RangeError('ids: expected at least one token per row, got 0');
    if (!Array.isArray(ids)) for (let b = 0; b < dims[0]; b++) checkIds(data.subarray(b * dims[1], (b + 1) * dims[1]), V, `ids[${b}]`);
    return { data, dims };
  }
}
