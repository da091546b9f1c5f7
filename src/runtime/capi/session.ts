/**
 * A BackendSession over an OrtSession of the C API. Every run goes through one IO binding:
 *
 *   feeds ──BindInput──▶ ┌──────────────┐ ──▶ host outputs: BindOutputToDevice(Cpu), copied to JS
 *                        │RunWithBinding│ ──▶ `deviceOutputs`: BindOutputToDevice(Cuda | WebGPU_Buffer), kept there
 *   into (preallocated) ─BindOutput────▶└──────────────┘     (fed back next step without a host copy)
 *
 * Runs of one session are serialized (the binding is shared); RunWithBinding itself runs on a
 * koffi worker thread so the event loop stays free. release() waits for the run in flight.
 */
import type { BackendSession, EpFallback, EpName, MemoryPolicy, RtTensor, ValueInfo } from '../backend.js';
import { ORT_ENUM, type Ptr } from './api-table.js';
import type { OrtLib } from './ort-api.js';
import { appendProvider, capturesGraph, configureSession, deviceMemoryInfo, type CapiEpOptions } from './providers.js';
import { CapiTensor, copyHostData, describeValue, elementTypeName, ELEMENT_TYPES, type Downloader } from './tensor.js';

/** Where a run puts an output: host memory, the EP's device memory, or a preallocated tensor. */
export type OutputTarget = 'cpu' | 'device' | CapiTensor;

export interface CapiSessionSetup {
  ep: EpName;
  fallbacks: readonly EpFallback[];
  epOptions: CapiEpOptions;
  deviceOutputs: readonly string[];
  logSeverityLevel: number;
  intraOpNumThreads?: number;
  memory?: MemoryPolicy;
  downloader: Downloader;
}

/** Inputs or outputs of a session, with symbolic dims as their names. */
function valueInfos(lib: OrtLib, session: Ptr, kind: 'input' | 'output'): ValueInfo[] {
  const n = lib.count(kind === 'input' ? 'SessionGetInputCount' : 'SessionGetOutputCount', session);
  const out: ValueInfo[] = [];
  for (let i = 0; i < n; i++) {
    const name = lib.takeString(lib.make(kind === 'input' ? 'SessionGetInputName' : 'SessionGetOutputName', session, i, lib.allocator()));
    const ti = lib.make(kind === 'input' ? 'SessionGetInputTypeInfo' : 'SessionGetOutputTypeInfo', session, i);
    try {
      const onnx = new Int32Array(1);
      lib.call('GetOnnxTypeFromTypeInfo', ti, onnx);
      if (onnx[0] !== ORT_ENUM.ONNX_TYPE_TENSOR) {
        out.push({ name, type: 'non-tensor', shape: [] });
        continue;
      }
      const info = lib.make('CastTypeInfoToTensorInfo', ti); // owned by the type info
      const t = new Int32Array(1);
      lib.call('GetTensorElementType', info, t);
      const rank = lib.count('GetDimensionsCount', info);
      const dims = new BigInt64Array(rank);
      lib.call('GetDimensions', info, dims, rank);
      const sym = new BigUint64Array(rank);
      lib.call('GetSymbolicDimensions', info, sym, rank);
      const shape = Array.from(dims, (d, k) => (d >= 0n ? Number(d) : sym[k] ? lib.cString(sym[k]!) || -1 : -1));
      out.push({ name, type: elementTypeName(t[0]!), shape });
    } finally {
      lib.raw.ReleaseTypeInfo(ti);
    }
  }
  return out;
}

export class CapiSession implements BackendSession {
  /** run() writes outputs into the host tensors given in `into` (BindOutput over their memory). */
  readonly writesInto = true;
  readonly ep: EpName;
  readonly fallbacks: readonly EpFallback[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly deviceOutputs: ReadonlySet<string>;
  /** Graph capture is on: every run must bind the same buffers (run() refuses; use runBound). */
  readonly capturesGraph: boolean;
  readonly epOptions: CapiEpOptions;
  private session: Ptr | null;
  private binding: Ptr | null = null;
  private readonly runOptions = new Map<number, Ptr>();
  private deviceInfo: Ptr | null = null;
  private deviceAllocator: Ptr | null = null;
  /** Tensors from allocateDevice(): freed at release() at the latest, while the allocator still exists. */
  private readonly allocated = new Set<CapiTensor>();
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  private constructor(
    readonly lib: OrtLib,
    session: Ptr,
    s: CapiSessionSetup,
    private readonly downloader: Downloader,
  ) {
    this.session = session;
    this.ep = s.ep;
    this.fallbacks = s.fallbacks;
    this.epOptions = s.epOptions;
    this.capturesGraph = capturesGraph(s.ep, s.epOptions);
    try {
      this.inputs = valueInfos(lib, session, 'input');
      this.outputs = valueInfos(lib, session, 'output');
      const names = new Set(this.outputs.map((o) => o.name));
      this.deviceOutputs = new Set(s.ep === 'cpu' ? [] : s.deviceOutputs.filter((n) => names.has(n)));
      this.deviceInfo = deviceMemoryInfo(lib, s.ep, s.epOptions);
      this.binding = lib.make('CreateIoBinding', session);
      this.runOptionsFor(-1);
    } catch (e) {
      this.free();
      throw e;
    }
  }

  /** Create a session on `s.ep` from a model path (external data memory-mapped by ORT) or bytes. */
  static async open(lib: OrtLib, model: string | Uint8Array, s: CapiSessionSetup): Promise<CapiSession> {
    const env = lib.env(); // first: providers log through it
    const so = lib.make('CreateSessionOptions');
    let session: Ptr;
    try {
      configureSession(lib, so, {
        logSeverityLevel: s.logSeverityLevel,
        intraOpNumThreads: s.intraOpNumThreads,
        lean: s.memory === 'lean' && s.ep === 'cpu',
        capture: capturesGraph(s.ep, s.epOptions),
      });
      appendProvider(lib, so, s.ep, s.epOptions);
      session =
        typeof model === 'string'
          ? await lib.callAsync('CreateSession', [env, model, so], true)
          : await lib.callAsync(
              'CreateSessionFromArray',
              [env, model.byteLength ? lib.koffi.address(model) : 0n, model.byteLength, so],
              true,
            );
    } finally {
      lib.raw.ReleaseSessionOptions(so); // the session copied what it needs
    }
    return new CapiSession(lib, session, s, s.downloader);
  }

  /** Run with every output fetched: `into` tensors receive theirs in place, `deviceOutputs` stay on the device. */
  async run(feeds: Record<string, RtTensor>, into?: Record<string, RtTensor>): Promise<Record<string, RtTensor>> {
    if (this.capturesGraph) {
      throw new Error(
        `session.run: graph capture is on for this ${this.ep} session, so every run must bind the same device buffers; use DeviceDecodeRunner (or runBound) instead`,
      );
    }
    const targets: Record<string, OutputTarget> = {};
    for (const o of this.outputs) {
      const t = into?.[o.name];
      targets[o.name] = t !== undefined ? this.own(t, `into '${o.name}'`) : this.deviceOutputs.has(o.name) ? 'device' : 'cpu';
    }
    return this.runBound(feeds, targets);
  }

  /**
   * Run with outputs bound as given (only these outputs are fetched). Preallocated targets come
   * back as the same objects; `graphId` selects the run options with `gpu_graph_id` (captured graphs);
   * `sync` runs on the calling thread instead of koffi's worker.
   */
  async runBound(
    feeds: Record<string, RtTensor>,
    outputs: Record<string, OutputTarget>,
    graphId = -1,
    sync = false,
  ): Promise<Record<string, CapiTensor>> {
    if (this.released) throw new Error('session.run: the session was released');
    const own = Object.entries(feeds).map(([name, t]) => [name, this.own(t, `feed '${name}'`)] as const);
    const run = async (): Promise<Record<string, CapiTensor>> => {
      if (this.released) throw new Error('session.run: the session was released');
      const lib = this.lib;
      const b = this.binding!;
      const names = Object.keys(outputs);
      const pins = own.map(([, t]) => t.pinned()); // the arrays behind the bound values stay alive through the run
      try {
        for (const [name, t] of own) lib.call('BindInput', b, name, t.ortValue());
        for (const name of names) {
          const target = outputs[name]!;
          if (target === 'cpu') lib.call('BindOutputToDevice', b, name, lib.cpuMemoryInfo());
          else if (target === 'device') {
            if (this.deviceInfo === null)
              throw new Error(`session.run: output '${name}' asked for device memory, but the ${this.ep} EP has none`);
            lib.call('BindOutputToDevice', b, name, this.deviceInfo);
          } else {
            pins.push(target.pinned());
            lib.call('BindOutput', b, name, target.ortValue());
          }
        }
        // sync: on this thread (no worker hop; blocks the event loop for the run, which a short decode step can afford)
        if (sync) lib.call('RunWithBinding', this.session!, this.runOptionsFor(graphId), b);
        else await lib.callAsync('RunWithBinding', [this.session!, this.runOptionsFor(graphId), b], false);
        return this.collect(names, outputs);
      } finally {
        lib.raw.ClearBoundInputs(b);
        lib.raw.ClearBoundOutputs(b);
        pins.length = 0;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * An uninitialized tensor in this session's device memory (allocated by ORT for the EP), for
   * outputs bound in place (DeviceDecodeRunner). release() disposes those still alive.
   */
  allocateDevice(type: string, dims: readonly number[]): CapiTensor {
    if (this.released) throw new Error('allocateDevice: the session was released');
    if (this.deviceInfo === null) throw new Error(`allocateDevice: the ${this.ep} EP has no device memory; allocate host tensors instead`);
    const spec = ELEMENT_TYPES[type];
    if (!spec) throw new TypeError(`allocateDevice: unsupported element type '${type}'`);
    this.deviceAllocator ??= this.lib.make('CreateAllocator', this.session!, this.deviceInfo);
    const shape = BigInt64Array.from(dims, (d) => BigInt(d));
    const value = this.lib.make('CreateTensorAsOrtValue', this.deviceAllocator, shape, shape.length, spec.onnx);
    const t = CapiTensor.owned(this.lib, value, type, [...dims], 'gpu-buffer', this.downloader, { ep: this.ep, epOptions: this.epOptions });
    this.allocated.add(t);
    return t;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.queue.catch(() => undefined);
    this.free();
  }

  /** The fetched outputs, in binding order, as tensors (host ones copied to JS and their OrtValue released). */
  private collect(names: readonly string[], outputs: Record<string, OutputTarget>): Record<string, CapiTensor> {
    const lib = this.lib;
    const arr = new BigUint64Array(1);
    const cnt = new BigUint64Array(1);
    lib.call('GetBoundOutputValues', this.binding!, lib.allocator(), arr, cnt);
    const values = lib.pointers(arr[0]!, Number(cnt[0]));
    lib.free(arr[0]!);
    const result: Record<string, CapiTensor> = {};
    let i = 0;
    try {
      if (values.length !== names.length) throw new Error(`GetBoundOutputValues: expected ${names.length} outputs, got ${values.length}`);
      for (; i < values.length; i++) {
        const name = names[i]!;
        const v = values[i]!;
        const target = outputs[name]!;
        if (typeof target !== 'string') {
          lib.raw.ReleaseValue(v); // ORT wrote into the target's own buffer
          result[name] = target;
          continue;
        }
        const d = describeValue(lib, v);
        if (d.location === 'cpu') {
          const data = copyHostData(lib, v, d);
          lib.raw.ReleaseValue(v);
          result[name] = CapiTensor.host(lib, d.type, data, d.dims);
        } else {
          result[name] = CapiTensor.owned(lib, v, d.type, d.dims, d.location, this.downloader, { ep: this.ep, epOptions: this.epOptions });
        }
      }
      return result;
    } catch (e) {
      for (let k = i; k < values.length; k++) lib.raw.ReleaseValue(values[k]!);
      for (const [name, t] of Object.entries(result)) if (typeof outputs[name] === 'string') t.dispose();
      throw e;
    }
  }

  /** The run options for a captured graph id (-1: none), created once. */
  private runOptionsFor(graphId: number): Ptr {
    let ro = this.runOptions.get(graphId);
    if (ro === undefined) {
      ro = this.lib.make('CreateRunOptions');
      this.runOptions.set(graphId, ro);
      if (graphId >= 0) this.lib.call('AddRunConfigEntry', ro, 'gpu_graph_id', String(graphId));
    }
    return ro;
  }

  /** A tensor of this backend's library, or a clear TypeError. */
  private own(t: RtTensor, what: string): CapiTensor {
    if (!(t instanceof CapiTensor) || t.lib !== this.lib) {
      throw new TypeError(
        `session.run: ${what} must be a tensor made by this C-API backend (${this.lib.path}), got ${t instanceof CapiTensor ? 'one from another library' : String(t)}`,
      );
    }
    if (t.disposed) throw new Error(`session.run: ${what} was disposed`);
    return t;
  }

  private free(): void {
    const r = this.lib.raw;
    for (const t of this.allocated) t.dispose(); // before their allocator goes
    this.allocated.clear();
    if (this.binding !== null) r.ReleaseIoBinding(this.binding);
    for (const ro of this.runOptions.values()) r.ReleaseRunOptions(ro);
    if (this.deviceAllocator !== null) r.ReleaseAllocator(this.deviceAllocator);
    if (this.deviceInfo !== null) r.ReleaseMemoryInfo(this.deviceInfo);
    if (this.session !== null) r.ReleaseSession(this.session);
    this.binding = this.deviceAllocator = this.deviceInfo = this.session = null;
    this.runOptions.clear();
  }
}
