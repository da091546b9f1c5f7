/**
 * DeviceDecodeRunner: decode steps (one token per row) whose recurrent state stays in the EP's
 * memory, for a step-only export (`mamba2-onnx export --paths step`) on the C-API backend.
 *
 *   per batch size B, allocated once:  ids [B, 1] · logits [B, 1, V] · state set 0 · state set 1
 *   step t:  past_* = set[t mod 2]  ──RunWithBinding──▶  present_* = set[(t + 1) mod 2], logits
 *
 * The buffers bound for one parity never change, so with graph capture (CUDA `enable_cuda_graph`,
 * WebGPU `enableGraphCapture`) each (B, parity) is one captured graph, `gpu_graph_id` = 2·B +
 * parity, replayed on later steps. On GPU EPs token ids go up and logits come down through the
 * backend's Identity copy sessions (copies.ts); on the CPU EP the same buffers are host arrays,
 * bound the same way (no capture there) and read and written in place.
 */
import { IO_NAMES } from '../../package/io.js';
import type { ModelMeta } from '../../package/meta.js';
import { describe, parseEpList, type EpFallback, type EpName, type RtTensor, type TensorData } from '../backend.js';
import { Logits } from '../forward-model.js';
import { hasGrowingState, Mamba2State, stateSpecs, type HostState, type StateSpec } from '../state.js';
import { capiBackend, type CapiBackend } from './capi-backend.js';
import type { CapiSession } from './session.js';
import { CudaRuntime } from './cuda-runtime.js';
import { CapiTensor, ELEMENT_TYPES, type TensorOrigin } from './tensor.js';

export interface DeviceDecodeRunnerOptions {
  /** Default: the process-wide capiBackend(). */
  backend?: CapiBackend;
  /** EPs to try in order (default 'cpu'), e.g. 'cuda,cpu'. */
  ep?: string | readonly string[];
  /** Capture and replay the step graph on CUDA / WebGPU (needs a `--paths step` export). Default false. */
  graphCapture?: boolean;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  intraOpNumThreads?: number;
  /** Copy ids, logits and states through ORT Identity sessions on the CPU EP too, as on GPU EPs (tests). */
  ortCopies?: boolean;
  /**
   * CUDA: ids and logits cross with cudaMemcpy (libcudart) instead of an Identity session run each
   * (default true; falls back to the Identity copies, with `copyNote` saying why, when libcudart is missing).
   */
  cudaCopies?: boolean;
  /** Run each step on the calling thread (no koffi worker hop; blocks the event loop for the step). Default false. */
  syncSteps?: boolean;
}

interface Slot {
  batch: number;
  /** The bound input_ids (device memory on GPU EPs) and its host staging tensor (the same one on the CPU EP). */
  ids: CapiTensor;
  idsHost: CapiTensor;
  logits: CapiTensor;
  /** Host array the logits are downloaded into with cudaMemcpy (CUDA copies only). */
  logitsHost: Float32Array;
  sets: [CapiTensor[], CapiTensor[]];
  parity: 0 | 1;
}

/** Batch sizes up to this one replay captured graphs (see graphId). */
export const MAX_CAPTURED_BATCH = Number(process.env['MAMBA2_ONNX_MAX_CAPTURED_BATCH'] ?? 1);

const elements = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export class DeviceDecodeRunner {
  readonly specs: readonly StateSpec[];
  private readonly slots = new Map<number, Slot>();
  private current: Slot | undefined;
  private released = false;
  /** libcudart for the step's copies (CUDA EP with cudaCopies), else undefined. */
  private readonly cuda: CudaRuntime | undefined;
  /** Why the step's copies go through ORT sessions on a GPU EP (undefined when they do not). */
  readonly copyNote: string | undefined;
  private readonly syncSteps: boolean;

  private constructor(
    readonly backend: CapiBackend,
    private readonly session: CapiSession,
    readonly meta: ModelMeta,
    private readonly ortCopies: boolean,
    opts: DeviceDecodeRunnerOptions = {},
  ) {
    this.specs = stateSpecs(meta, session.inputs, session.outputs);
    this.syncSteps = opts.syncSteps === true;
    if (session.ep === 'cuda' && opts.cudaCopies !== false) {
      const rt = CudaRuntime.load(backend.lib.koffi);
      if (typeof rt === 'string') this.copyNote = rt;
      else this.cuda = rt;
    }
    if (hasGrowingState(this.specs))
      throw new Error(
        'DeviceDecodeRunner: this model keeps KV caches (a hybrid), whose state grows every step; fixed device buffers cannot hold it',
      );
  }

  /** Open an exported model directory (a `--paths step` export for graph capture). */
  static async load(dir: string, opts: DeviceDecodeRunnerOptions = {}): Promise<DeviceDecodeRunner> {
    const files = await (await import('#node-backend')).readModelDir(dir);
    return DeviceDecodeRunner.create(files.modelPath, files.meta, opts);
  }

  static async create(model: string | Uint8Array, meta: ModelMeta, opts: DeviceDecodeRunnerOptions = {}): Promise<DeviceDecodeRunner> {
    const backend = opts.backend ?? capiBackend();
    const capture = opts.graphCapture === true;
    if (capture && meta.singleStep !== 'only') {
      throw new Error(
        `DeviceDecodeRunner: graph capture needs a step-only graph (export with --paths step); this one has singleStep '${meta.singleStep}'`,
      );
    }
    const session = await backend.openSession(model, {
      eps: parseEpList(opts.ep ?? 'cpu', 'opts.ep'),
      ...(opts.logSeverityLevel !== undefined ? { logSeverityLevel: opts.logSeverityLevel } : {}),
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
      ...(capture ? { cudaGraph: true, webgpuGraphCapture: true } : {}),
    });
    try {
      return new DeviceDecodeRunner(backend, session, meta, opts.ortCopies === true, opts);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  get ep(): EpName {
    return this.session.ep;
  }

  get fallbacks(): readonly EpFallback[] {
    return this.session.fallbacks;
  }

  /** True when steps replay captured graphs (CUDA / WebGPU with graphCapture). */
  get capturesGraph(): boolean {
    return this.session.capturesGraph;
  }

  /** Batch sizes whose buffers are allocated (each once). */
  get batches(): number[] {
    return [...this.slots.keys()];
  }

  /** Rows of the sequence being decoded (0 before begin()). */
  get batch(): number {
    return this.current?.batch ?? 0;
  }

  /**
   * Start decoding from `state` (a Mamba2State of any backend, e.g. after a prefill, or a host
   * state) or, without one, from zeros for `batch` rows. The state is copied into this batch
   * size's buffers; `state` itself is left as it is.
   */
  async begin(state?: Mamba2State | HostState, batch = 1): Promise<void> {
    this.check();
    const B = state === undefined ? batch : state.batch;
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`begin: batch expected an integer ≥ 1, got ${describe(B)}`);
    const slot = this.slot(B);
    slot.parity = 0;
    this.current = slot;
    for (const [i, spec] of this.specs.entries()) {
      const dst = slot.sets[0][i]!;
      let src: CapiTensor;
      if (state === undefined)
        src = CapiTensor.host(
          this.backend.lib,
          spec.type,
          new ELEMENT_TYPES[spec.type]!.array(elements(dst.dims)) as unknown as TensorData,
          dst.dims,
        );
      else src = await this.source(state, i, spec, dst.dims);
      try {
        await this.copy(dst, src);
      } finally {
        if (state === undefined || !(state instanceof Mamba2State) || src !== state.tensors[i]) src.dispose();
      }
    }
  }

  /** One decode step: one token id per row → logits [B, 1, V]; the state advances in place. */
  async step(ids: readonly number[]): Promise<Logits> {
    this.check();
    const slot = this.current;
    if (!slot) throw new Error('step: call begin() first');
    if (!Array.isArray(ids) || ids.length !== slot.batch)
      throw new RangeError(`step: expected ${slot.batch} token ids (one per row), got ${describe(ids)}`);
    const V = this.meta.config.vocabSize;
    const host = slot.idsHost.data as BigInt64Array;
    ids.forEach((id, b) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`step: ids[${b}] expected an integer in [0, ${V}), got ${id}`);
      host[b] = BigInt(id);
    });
    if (this.cuda) this.cuda.upload(this.devicePointer(slot.ids), host);
    else if (slot.ids !== slot.idsHost) await this.backend.copyInto(slot.ids, slot.idsHost, this.origin);
    const [from, to] = [slot.sets[slot.parity], slot.sets[slot.parity ^ 1]!];
    const feeds: Record<string, RtTensor> = { [IO_NAMES.inputIds]: slot.ids };
    const outputs: Record<string, CapiTensor> = { [IO_NAMES.logits]: slot.logits };
    this.specs.forEach((s, i) => {
      feeds[s.input] = from[i]!;
      outputs[s.output] = to[i]!;
    });
    await this.session.runBound(feeds, outputs, this.graphId(slot), this.syncSteps);
    slot.parity ^= 1;
    if (this.cuda) {
      this.cuda.download(slot.logitsHost, this.devicePointer(slot.logits));
      return new Logits(slot.logitsHost.slice(), [slot.batch, 1, V]);
    }
    const data =
      slot.logits.location === 'cpu' && !this.ortCopies
        ? (slot.logits.data as Float32Array).slice()
        : ((await this.backend.copyToHost(slot.logits, 'identity', this.origin)) as Float32Array);
    return new Logits(data, [slot.batch, 1, V]);
  }

  /** A host copy of the current state, as a Mamba2State of the backend (feed it to a Mamba2Model on it, or save it). */
  async snapshot(): Promise<Mamba2State> {
    this.check();
    const slot = this.current;
    if (!slot) throw new Error('snapshot: call begin() first');
    const tensors = await Promise.all(
      slot.sets[slot.parity].map(async (t) => {
        const data =
          t.location === 'cpu' && !this.ortCopies
            ? (t.data as Float32Array | Uint16Array).slice()
            : await this.backend.copyToHost(t, 'identity', this.origin);
        return CapiTensor.host(this.backend.lib, t.type, data, t.dims);
      }),
    );
    return new Mamba2State(this.backend, this.specs, slot.batch, tensors);
  }

  /** Free every buffer, then the session. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const s of this.slots.values()) for (const t of [s.ids, s.idsHost, s.logits, ...s.sets[0], ...s.sets[1]]) t.dispose();
    this.slots.clear();
    this.current = undefined;
    await this.session.release();
  }

  private get origin(): TensorOrigin {
    return { ep: this.session.ep, epOptions: this.session.epOptions };
  }

  /** The buffers of batch size B (allocated on first use: host arrays on the CPU EP, device memory elsewhere). */
  private slot(B: number): Slot {
    let slot = this.slots.get(B);
    if (slot) return slot;
    const lib = this.backend.lib;
    const onDevice = this.session.ep !== 'cpu';
    const make = (type: string, dims: number[]): CapiTensor =>
      onDevice
        ? this.session.allocateDevice(type, dims)
        : CapiTensor.host(lib, type, new ELEMENT_TYPES[type]!.array(elements(dims)) as unknown as TensorData, dims);
    const idsHost = CapiTensor.host(lib, 'int64', new BigInt64Array(B), [B, 1]);
    const set = (): CapiTensor[] => this.specs.map((s) => make(s.type, [B, ...s.dims]));
    const V = this.meta.config.vocabSize;
    slot = {
      batch: B,
      idsHost,
      ids: onDevice || this.ortCopies ? make('int64', [B, 1]) : idsHost,
      logits: make('float32', [B, 1, V]),
      logitsHost: new Float32Array(this.cuda ? B * V : 0),
      sets: [set(), set()],
      parity: 0,
    };
    this.slots.set(B, slot);
    return slot;
  }

  /** State tensor i of `state` as a tensor of this backend (the same object when it already is one). */
  private async source(state: Mamba2State | HostState, i: number, spec: StateSpec, dims: readonly number[]): Promise<CapiTensor> {
    if (state instanceof Mamba2State) {
      const sp = state.specs[i];
      if (state.specs.length !== this.specs.length || sp?.input !== spec.input || sp.dims.join() !== spec.dims.join()) {
        throw new RangeError('begin: the state belongs to a model with different state tensors');
      }
      const t = state.tensors[i]!;
      if (t instanceof CapiTensor && t.lib === this.backend.lib) return t;
      return CapiTensor.host(this.backend.lib, spec.type, (await t.getData()) as TensorData, dims);
    }
    const t = state.tensors[i];
    if (!t || t.name !== spec.input || t.dims.join() !== dims.join())
      throw new RangeError(
        `begin: host state tensor ${i} expected '${spec.input}' [${dims.join(', ')}], got ${t ? `'${t.name}' [${t.dims.join(', ')}]` : 'none'}`,
      );
    if (spec.type !== 'float32')
      throw new TypeError(`begin: host states are float32; this model's '${spec.input}' is ${spec.type} (pass a Mamba2State)`);
    return CapiTensor.host(this.backend.lib, 'float32', Float32Array.from(t.data), dims);
  }

  /** dst ← src: a typed-array copy when both are host arrays on the CPU path, else an Identity session on this EP. */
  private async copy(dst: CapiTensor, src: CapiTensor): Promise<void> {
    if (dst.location === 'cpu' && src.location === 'cpu' && !this.ortCopies) (dst.data as Float32Array).set(src.data as Float32Array);
    else await this.backend.copyInto(dst, src, this.origin);
  }

  /**
   * The captured graph of this step: one per parity at batch 1. Larger batches run uncaptured
   * (gpu_graph_id −1): replays at batch 16 gave logits 0.33 away from the uncaptured run on the
   * H200 (ORT 1.29 CUDA EP; BENCHMARKS.md), and a fast wrong step is worse than a slow right one.
   */
  private graphId(slot: Slot): number {
    return this.capturesGraph && slot.batch <= MAX_CAPTURED_BATCH ? 2 * slot.batch + slot.parity : -1;
  }

  /** The device address of a tensor's data (GetTensorMutableData). */
  private devicePointer(t: CapiTensor): bigint {
    return this.backend.lib.make('GetTensorMutableData', t.ortValue());
  }

  private check(): void {
    if (this.released) throw new Error('DeviceDecodeRunner: the runner was released');
  }
}
