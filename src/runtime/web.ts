/**
 * The onnxruntime-web backend: the native WebGPU EP from `onnxruntime-web/webgpu`, with the wasm
 * (CPU) EP of the same build as fallback. The backend EP name `cpu` means ORT's `wasm` EP here.
 *
 * One backend per model: a model's external data (model.onnx.data) reaches ORT through the
 * `externalData` session option, which this backend holds (`new WebBackend({ externalData })`).
 *
 * Device-resident outputs: on WebGPU, `preferredOutputLocation: 'gpu-buffer'` keeps the present_*
 * states on the GPU between steps; `getData()` downloads them when the host needs them.
 */
import * as ort from 'onnxruntime-web/webgpu';
import {
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
} from './backend.js';
import { OrtSession } from './ort-session.js';

/** The ORT EP behind a backend EP name, as users of a browser know them. */
export type WebEpName = 'webgpu' | 'wasm';
export const WEB_EP: Readonly<Partial<Record<EpName, WebEpName>>> = { webgpu: 'webgpu', cpu: 'wasm' };

/** External data of one model: a file name as model.onnx refers to it, and its bytes (or a Blob / URL). */
export interface ExternalDataFile {
  path: string;
  data: Uint8Array | Blob | string;
}

/** Global onnxruntime-web settings; they take effect at the first session created in the page. */
export interface WebRuntimeOptions {
  /** URL prefix of onnxruntime-web's .wasm/.mjs files (default: beside onnxruntime-web's own module). */
  wasmPaths?: string;
  /** wasm threads; default min(4, cores) when the page is cross-origin isolated, else 1. */
  numThreads?: number;
}

export interface WebBackendOptions extends WebRuntimeOptions {
  externalData?: readonly ExternalDataFile[];
}

/** EP failures that mean "not available here", as opposed to a model the EP cannot run. */
const UNAVAILABLE = /adapter|webgpu is not supported|navigator\.gpu|backend not found|no available backend|not available|requestDevice/i;

const WEB_HINT =
  'WebGPU needs a browser that has it turned on (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows) and a GPU it does not ' +
  "blocklist; load with ep 'auto' to fall back to wasm (CPU)";

/** An EP is unavailable in this browser (same class as Node's, with a browser's hint). */
export class WebEpUnavailableError extends EpUnavailableError {
  constructor(ep: EpName, reason: string, tried: readonly EpFallback[] = []) {
    super(ep, reason, tried);
    const before = tried.length > 0 ? ` (also tried: ${tried.map((t) => `${WEB_EP[t.ep] ?? t.ep}: ${t.reason}`).join('; ')})` : '';
    this.message = `execution provider '${WEB_EP[ep] ?? ep}' is unavailable in this browser: ${reason}. ${ep === 'webgpu' ? WEB_HINT : 'use webgpu or wasm'}${before}`;
  }
}

/**
 * One line from an onnxruntime-web error: the EP's own message inside
 * "no available backend found. ERR: [webgpu] Error: Failed to get GPU adapter…", else ORT's first line.
 */
export function summarizeWebError(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  const m = /ERR: \[\w+\] (?:\w*Error: )?([^\n]*)/.exec(raw);
  return m ? m[1]!.trim() : summarizeOrtError(err);
}

let configured = false;
/** Apply `opts` to `ort.env` (once: ORT reads these when it initializes). */
export function configureWebRuntime(opts: WebRuntimeOptions = {}): void {
  if (configured) return;
  configured = true;
  if (opts.wasmPaths !== undefined) ort.env.wasm.wasmPaths = opts.wasmPaths;
  const isolated = typeof globalThis.crossOriginIsolated === 'boolean' && globalThis.crossOriginIsolated;
  const cores = typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 1;
  const threads = opts.numThreads ?? (isolated ? Math.min(4, cores) : 1);
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`numThreads: expected an integer ≥ 1, got ${threads}`);
  ort.env.wasm.numThreads = isolated ? threads : 1;
  ort.env.logLevel = 'error';
}

export class WebBackend implements Backend {
  readonly name = 'onnxruntime-web';
  private readonly externalData: readonly ExternalDataFile[];

  constructor(private readonly opts: WebBackendOptions = {}) {
    this.externalData = opts.externalData ?? [];
  }

  /** Both EPs are in the `onnxruntime-web/webgpu` build; whether WebGPU works is another matter. */
  compiledEps(): EpName[] {
    return ['webgpu', 'cpu'];
  }

  async createSession(model: string | Uint8Array, opts: SessionCreateOptions): Promise<BackendSession> {
    configureWebRuntime(this.opts);
    const what = typeof model === 'string' ? model : `a ${model.byteLength}-byte model buffer`;
    const tried: EpFallback[] = [];
    let lastError: Error | undefined;
    for (const ep of opts.eps) {
      const ortEp = WEB_EP[ep];
      if (!ortEp) {
        tried.push({ ep, reason: 'onnxruntime-web has no such provider (use webgpu or cpu, which runs on wasm)' });
        lastError = new WebEpUnavailableError(ep, tried[tried.length - 1]!.reason, tried.slice(0, -1));
        continue;
      }
      const device = ep === 'webgpu' ? new Set(opts.deviceOutputs ?? []) : new Set<string>();
      const loc: Record<string, ort.OnnxValueDataLocation> = {};
      for (const name of device) loc[name] = 'gpu-buffer';
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [ortEp === 'webgpu' ? 'webgpu' : 'wasm'],
        logSeverityLevel: opts.logSeverityLevel ?? 3,
        ...(this.externalData.length > 0 ? { externalData: this.externalData.map((f) => ({ path: f.path, data: f.data })) } : {}),
        ...(device.size > 0 ? { preferredOutputLocation: loc } : {}),
      };
      try {
        const session =
          typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
        return new OrtSession(session, ep, tried, device, ort.Tensor, 'onnxruntime-web');
      } catch (e) {
        const reason = summarizeWebError(e);
        const raw = e instanceof Error ? e.message : String(e);
        lastError =
          ortEp === 'webgpu' && UNAVAILABLE.test(raw)
            ? new WebEpUnavailableError(ep, reason, tried.slice())
            : new SessionCreateError(ep, what, reason, tried.slice());
        tried.push({ ep, reason });
      }
    }
    throw lastError ?? new RangeError('createSession: opts.eps is empty, expected at least one of webgpu, cpu');
  }

  tensor(type: TensorType, data: TensorData, dims: readonly number[]): RtTensor {
    return new ort.Tensor(type, data, dims) as unknown as RtTensor;
  }

  /** Host data of `t`; a WebGPU tensor is downloaded (and stays valid). */
  async download(t: RtTensor): Promise<TensorData> {
    if (t.location === 'cpu') return t.data as TensorData;
    if (t.location !== 'gpu-buffer') throw new Error(`download: tensor location '${t.location}' cannot be read (disposed?)`);
    return (await t.getData(false)) as TensorData;
  }
}
