/**
 * The small interface the generation code is written against, so that one implementation serves
 * onnxruntime-node (node.ts) and onnxruntime-web (a later web.ts). It deliberately mirrors the
 * onnxruntime-common shapes (Tensor with `location`, `getData`, `dispose`) without importing them,
 * so this file carries no runtime dependency.
 */

/** Execution providers a user may ask for. */
export type EpName = 'cpu' | 'webgpu' | 'cuda';
export const EP_NAMES: readonly EpName[] = ['cpu', 'webgpu', 'cuda'];

/** Element types that cross the session boundary in this project. */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array;

/** Where a tensor's data lives: on the host, or in a device buffer the EP owns. */
export type TensorLocation = 'cpu' | 'gpu-buffer' | 'none' | (string & {});

/** A tensor as the backend hands it out (an onnxruntime Tensor satisfies this). */
export interface RtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly location: TensorLocation;
  /** Host data; throws when the data lives on a device. */
  readonly data: unknown;
  /** Host data, downloading it from the device if needed. */
  getData(releaseData?: boolean): Promise<unknown>;
  /** Frees the data (device memory for device tensors). The tensor is unusable afterwards. */
  dispose(): void;
}

/** Metadata of one graph input or output, as the session reports it. */
export interface ValueInfo {
  readonly name: string;
  readonly type: string;
  /** Numbers for fixed dims, strings for symbolic ones (`batch`, `sequence`). */
  readonly shape: readonly (number | string)[];
}

export interface SessionCreateOptions {
  /** Execution providers to try in order; the first that creates a session wins. */
  eps: readonly EpName[];
  /** Outputs to keep on the device between runs (honoured only where the EP can). */
  deviceOutputs?: readonly string[];
  /** ORT log severity: 0 verbose … 4 fatal. Default 3 (errors only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Intra-op threads for the CPU EP (0 = ORT's default). */
  intraOpNumThreads?: number;
  /**
   * Host memory policy of the CPU EP. 'fast' (default): ORT prepacks the GEMM weights (a second,
   * anonymous copy of them) and keeps activations in a growing arena. 'lean': no prepacking (the
   * weights are read in place from the memory-mapped external data file) and no arena (activations
   * are freed after each run): resident memory ≈ weights + a fixed overhead, at the cost of prefill
   * speed (decode is unaffected; BENCHMARKS.md). GPU EPs ignore it.
   */
  memory?: MemoryPolicy;
}

export type MemoryPolicy = 'fast' | 'lean';
export const MEMORY_POLICIES: readonly MemoryPolicy[] = ['fast', 'lean'];

/** Why an EP earlier in the list was not used. */
export interface EpFallback {
  ep: EpName;
  reason: string;
}

export interface BackendSession {
  /** The EP that really runs the session. */
  readonly ep: EpName;
  /** EPs tried before `ep` and why they failed (empty when the first choice worked). */
  readonly fallbacks: readonly EpFallback[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Outputs that come back as device tensors (subset of `deviceOutputs` the EP honoured). */
  readonly deviceOutputs: ReadonlySet<string>;
  /**
   * Run with all outputs fetched. Tensors fed in are not disposed. `into` names host tensors that
   * receive outputs in place (ORT writes them; no output allocation or copy); honoured only when
   * `writesInto` is true, otherwise ignored.
   */
  run(feeds: Record<string, RtTensor>, into?: Record<string, RtTensor>): Promise<Record<string, RtTensor>>;
  /** Whether run() writes outputs into the host tensors given in `into`. */
  readonly writesInto: boolean;
  release(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  /** EPs compiled into this backend (not a promise that they work on this machine). */
  compiledEps(): EpName[];
  createSession(model: string | Uint8Array, opts: SessionCreateOptions): Promise<BackendSession>;
  tensor(type: 'float32', data: Float32Array, dims: readonly number[]): RtTensor;
  tensor(type: 'float16', data: Uint16Array, dims: readonly number[]): RtTensor;
  tensor(type: 'int64', data: BigInt64Array, dims: readonly number[]): RtTensor;
  tensor(type: 'int32', data: Int32Array, dims: readonly number[]): RtTensor;
  tensor(type: TensorType, data: TensorData, dims: readonly number[]): RtTensor;
  /** Host data of a tensor, downloading it from the device when needed (never disposes it). */
  download(t: RtTensor): Promise<TensorData>;
}

/** How to get each EP working, for error messages. */
export const EP_HINTS: Readonly<Record<EpName, string>> = {
  cpu: 'the CPU provider is always bundled with onnxruntime; this failure is a model or runtime problem',
  webgpu:
    'WebGPU needs a GPU adapter with Vulkan (Linux), Metal (macOS) or D3D12 (Windows); on Linux without a GPU, ' +
    "Mesa's lavapipe (mesa-vulkan-drivers ≥ 25) provides a software one. Use --ep webgpu,cpu to fall back to the CPU",
  cuda:
    'the CUDA provider is not bundled: reinstall with `npm install onnxruntime-node --onnxruntime-node-install=cuda12` ' +
    '(needs internet, an NVIDIA GPU, CUDA 12 and cuDNN 9). Use --ep cuda,cpu to fall back to the CPU',
};

/** An execution provider could not create a session on this machine. */
export class EpUnavailableError extends Error {
  override readonly name = 'EpUnavailableError';
  constructor(
    readonly ep: EpName,
    readonly reason: string,
    readonly tried: readonly EpFallback[] = [],
  ) {
    const before = tried.length > 0 ? ` (also tried: ${tried.map((t) => `${t.ep}: ${t.reason}`).join('; ')})` : '';
    super(`execution provider '${ep}' is unavailable: ${reason}. How to get it: ${EP_HINTS[ep]}${before}`);
  }
}

/** A session could not be created for a reason other than a missing EP (e.g. a bad model). */
export class SessionCreateError extends Error {
  override readonly name = 'SessionCreateError';
  constructor(
    readonly ep: EpName,
    readonly model: string,
    reason: string,
    readonly tried: readonly EpFallback[] = [],
  ) {
    const before = tried.length > 0 ? ` (also tried: ${tried.map((t) => `${t.ep}: ${t.reason}`).join('; ')})` : '';
    super(`could not create an onnxruntime session for ${model} on '${ep}': ${reason}${before}`);
  }
}

/** Short, one-line reason from an ORT error message (strips source paths and ORT prefixes). */
export function summarizeOrtError(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  if (/No supported adapters|Failed to get a WebGPU adapter/i.test(raw)) return 'no WebGPU adapter found (No supported adapters)';
  if (/Failed to load shared library|providers_cuda|libcudart|libcublas|libcudnn/i.test(raw)) {
    return 'the CUDA provider library could not be loaded (onnxruntime-node was installed without it, or CUDA/cuDNN is missing)';
  }
  if (/backend not found|no available backend/i.test(raw)) return 'this onnxruntime build has no such provider';
  const line = raw.split('\n').find((l) => l.trim() !== '') ?? raw;
  return line.replace(/^\/\S+:\d+\s+/, '').trim(); // drop ORT's `/src/file.cc:123 ` prefix
}

/**
 * Parse an EP list such as `'webgpu,cpu'` or `['cuda', 'cpu']`. Unknown names are a RangeError
 * naming the argument and the valid values.
 */
/** Validates a memory policy from a caller (opts.memory). */
export function checkMemoryPolicy(value: unknown, argName = 'opts.memory'): MemoryPolicy {
  if (typeof value === 'string' && (MEMORY_POLICIES as readonly string[]).includes(value)) return value as MemoryPolicy;
  throw new RangeError(`${argName}: expected ${MEMORY_POLICIES.map((m) => `'${m}'`).join(' or ')}, got ${describe(value)}`);
}

export function parseEpList(value: unknown, argName = 'ep'): EpName[] {
  let parts: unknown[];
  if (typeof value === 'string') parts = value.split(',').map((s) => s.trim());
  else if (Array.isArray(value)) parts = value;
  else throw new TypeError(`${argName}: expected an EP name or a list of them (${EP_NAMES.join(', ')}), got ${describe(value)}`);
  if (parts.length === 0 || parts.some((p) => p === '')) {
    throw new RangeError(`${argName}: expected one or more of ${EP_NAMES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  const out: EpName[] = [];
  for (const p of parts) {
    if (typeof p !== 'string') throw new TypeError(`${argName}: expected EP names as strings, got ${describe(p)}`);
    const name = p.toLowerCase();
    if (!(EP_NAMES as readonly string[]).includes(name)) {
      throw new RangeError(`${argName}: unknown execution provider '${p}', expected one of ${EP_NAMES.join(', ')}`);
    }
    if (!out.includes(name as EpName)) out.push(name as EpName);
  }
  return out;
}

/** `describe(x)` for error messages: the kind, and the value when short. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as ArrayLike<unknown>).length}`;
  switch (typeof v) {
    case 'string':
      return v.length > 40 ? `a string of length ${v.length}` : `the string ${JSON.stringify(v)}`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    default:
      return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  }
}
