/**
 * The C-API backend: ONNX Runtime driven through its C API (koffi), for what onnxruntime-node
 * hides: CUDA provider options (`enable_cuda_graph`), WebGPU graph capture, IO binding with
 * outputs kept in device memory on CUDA as well as WebGPU, run options (`gpu_graph_id`).
 *
 *   const backend = capiBackend();                        // the library beside onnxruntime-node
 *   const m = await Mamba2Model.load(dir, { backend, ep: 'cuda,cpu' });
 *
 * EPs are tried in order like the onnxruntime-node backend; each one passed over leaves a one-line
 * reason in `fallbacks`. Device tensors come back to the host through CopyTensors (ORT ≥ 1.23, where
 * the EP registered its data transfer with the Env), else through a one-node Identity session on
 * the tensor's EP whose output is bound to host memory.
 */
import { basename } from 'node:path';
import {
  EP_NAMES,
  EpUnavailableError,
  SessionCreateError,
  summarizeOrtError,
  type Backend,
  type BackendSession,
  type EpFallback,
  type EpName,
  type RtTensor,
  type SessionCreateOptions,
  type TensorData,
  type TensorType,
} from '../backend.js';
import { Copier } from './copies.js';
import { loadOrt, OrtCallError, type OrtLib } from './ort-api.js';
import { ORT_PROVIDER, type CapiEpOptions } from './providers.js';
import { CapiSession } from './session.js';
import { CapiTensor, type TensorOrigin } from './tensor.js';

export interface CapiBackendOptions extends CapiEpOptions {
  /** The ONNX Runtime shared library (default: $MAMBA2_ONNX_ORT_LIB, else the one onnxruntime-node ships). */
  libraryPath?: string;
}

/** Per-session settings: the common ones plus EP options overriding the backend's. */
export type CapiSessionOptions = SessionCreateOptions & CapiEpOptions;

/** EP failures that mean "not available here", as opposed to a model the EP cannot run. */
const UNAVAILABLE =
  /adapter|Failed to load (shared )?library|providers_(cuda|shared)|not enabled in this build|libcu|CUDA driver|cudaGetDeviceCount|cudaErrorNoDevice/i;

/** One line saying why an EP failed here, naming the API call. */
export function summarizeCapiError(e: unknown, ep: EpName): string {
  const raw = e instanceof Error ? e.message : String(e);
  const call = e instanceof OrtCallError ? `${e.call}: ` : '';
  const lib = /Failed to load (?:shared )?library\s+(\S+?)(?: with error: (?:\/\S+: )?([^\n]*))?$/m.exec(raw);
  if (lib)
    return `${call}the ${ep.toUpperCase()} provider library ${basename(lib[1]!)} could not be loaded${lib[2] ? ` (${lib[2].trim()})` : ''}`;
  return `${call}${summarizeOrtError(raw.replace(/^\w+: ORT_\w+: /, ''))}`;
}

export class CapiBackend implements Backend {
  readonly name = 'onnxruntime-capi';
  readonly lib: OrtLib;
  private readonly copier: Copier;
  /** Why CopyTensors cannot be used here (set at its first failure; the Identity path is used then). */
  private copyTensorsFailure: string | undefined;

  constructor(readonly options: CapiBackendOptions = {}) {
    this.lib = loadOrt(options.libraryPath !== undefined ? { libraryPath: options.libraryPath } : {});
    this.copier = new Copier(this.lib, (t) => this.download(t));
  }

  /** The library in use: version, path, OrtApi version, build info. */
  get info(): { version: string; path: string; apiVersion: number; buildInfo: string } {
    return { version: this.lib.version, path: this.lib.path, apiVersion: this.lib.apiVersion, buildInfo: this.lib.buildInfo() };
  }

  compiledEps(): EpName[] {
    const have = this.lib.providers();
    return EP_NAMES.filter((e) => have.includes(ORT_PROVIDER[e]));
  }

  async createSession(model: string | Uint8Array, opts: CapiSessionOptions): Promise<BackendSession> {
    return this.openSession(model, opts);
  }

  /** createSession, typed as the C-API session (runBound, allocateDevice: DeviceDecodeRunner). */
  async openSession(model: string | Uint8Array, opts: CapiSessionOptions): Promise<CapiSession> {
    const compiled = this.compiledEps();
    const what = typeof model === 'string' ? model : `a ${model.byteLength}-byte model buffer`;
    const epOptions: CapiEpOptions = { ...this.options, ...pickEpOptions(opts) };
    const tried: EpFallback[] = [];
    let lastError: Error | undefined;
    for (const ep of opts.eps) {
      if (!(EP_NAMES as readonly string[]).includes(ep)) {
        tried.push({ ep, reason: `unknown execution provider '${String(ep)}' (expected one of ${EP_NAMES.join(', ')})` });
        lastError = new RangeError(`createSession: ${tried.map((t) => `${t.ep}: ${t.reason}`).join('; ')}`);
        continue;
      }
      if (!compiled.includes(ep)) {
        tried.push({ ep, reason: `ONNX Runtime ${this.lib.version} (${this.lib.path}) was built without it` });
        lastError = new EpUnavailableError(ep, tried[tried.length - 1]!.reason, tried.slice(0, -1));
        continue;
      }
      try {
        return await CapiSession.open(this.lib, model, {
          ep,
          fallbacks: tried.slice(),
          epOptions,
          deviceOutputs: opts.deviceOutputs ?? [],
          logSeverityLevel: opts.logSeverityLevel ?? 3,
          ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
          ...(opts.memory ? { memory: opts.memory } : {}),
          downloader: (t) => this.download(t),
        });
      } catch (e) {
        const reason = summarizeCapiError(e, ep);
        const raw = e instanceof Error ? e.message : String(e);
        lastError = UNAVAILABLE.test(raw)
          ? new EpUnavailableError(ep, reason, tried.slice())
          : new SessionCreateError(ep, what, reason, tried.slice());
        tried.push({ ep, reason });
      }
    }
    throw lastError ?? new RangeError('createSession: opts.eps is empty, expected at least one of cpu, webgpu, cuda');
  }

  tensor(type: TensorType, data: TensorData, dims: readonly number[]): RtTensor {
    return CapiTensor.host(this.lib, type, data, dims);
  }

  /** Host data of `t`: its array for host tensors, a device → host copy otherwise (never disposes `t`). */
  async download(t: RtTensor): Promise<TensorData> {
    if (t.location === 'cpu') return t.data as TensorData;
    if (!(t instanceof CapiTensor) || t.lib !== this.lib)
      throw new TypeError(`download: expected a device tensor of this C-API backend, got ${String(t)}`);
    if (t.disposed) throw new Error('download: the tensor was disposed');
    if (this.lib.has('CopyTensors') && this.copyTensorsFailure === undefined) {
      try {
        return this.copier.copyTensors(t);
      } catch (e) {
        this.copyTensorsFailure = e instanceof Error ? e.message : String(e);
      }
    }
    return this.copier.toHost(t, t.origin ?? { ep: 'cpu', epOptions: {} });
  }

  /**
   * Copy any tensor of this backend into a new host array, by CopyTensors or through the Identity
   * session on `on` (default: the CPU EP). download() picks the way; this one is for tests and diagnostics.
   */
  copyToHost(t: CapiTensor, via: 'copy-tensors'): TensorData;
  copyToHost(t: CapiTensor, via: 'identity', on?: TensorOrigin): Promise<TensorData>;
  copyToHost(t: CapiTensor, via: 'copy-tensors' | 'identity', on?: TensorOrigin): TensorData | Promise<TensorData> {
    return via === 'copy-tensors' ? this.copier.copyTensors(t) : this.copier.toHost(t, on ?? { ep: 'cpu', epOptions: {} });
  }

  /** Copy `src` into the preallocated `dst` (host or device, same type and dims) with an Identity session on `on`. */
  async copyInto(dst: CapiTensor, src: CapiTensor, on: TensorOrigin): Promise<void> {
    await this.copier.into(dst, src, on);
  }

  /** Why download() does not use CopyTensors here (undefined while it does, or has not been tried). */
  get copyTensorsUnavailable(): string | undefined {
    return this.copyTensorsFailure;
  }

  /** Release the Identity sessions used for copies. The backend stays usable. */
  async release(): Promise<void> {
    await this.copier.release();
  }
}

const EP_OPTION_KEYS = ['deviceId', 'cudaGraph', 'webgpuGraphCapture', 'cudaOptions', 'webgpuOptions'] as const;

function pickEpOptions(o: CapiSessionOptions): CapiEpOptions {
  const out: Record<string, unknown> = {};
  for (const k of EP_OPTION_KEYS) if (o[k] !== undefined) out[k] = o[k];
  return out as CapiEpOptions;
}

let shared: CapiBackend | undefined;

/**
 * The C-API backend. Without options: one process-wide instance over the default library. Throws
 * one clear line (CapiUnavailableError) when koffi or the library cannot be loaded.
 */
export function capiBackend(opts?: CapiBackendOptions): CapiBackend {
  if (opts !== undefined && Object.keys(opts).length > 0) return new CapiBackend(opts);
  shared ??= new CapiBackend();
  return shared;
}
