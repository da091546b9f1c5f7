/**
 * The onnxruntime-node backend. CPU and WebGPU are compiled in; CUDA needs the provider library
 * installed with `--onnxruntime-node-install=cuda12`.
 *
 * Device-resident outputs: onnxruntime-node binds `preferredOutputLocation: 'gpu-buffer'` outputs
 * to WebGPU buffers only (its IO binding uses the `WebGPU_Buf` memory info), so on WebGPU the
 * present_* states stay on the GPU between steps and are fed straight back as past_*. The CUDA EP
 * has no device tensors in the Node API: its states make a host round trip each step.
 */
import * as ort from 'onnxruntime-node';
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
} from './backend.js';
import { OrtSession } from './ort-session.js';
import { COPY_INPUT, COPY_OUTPUT, copyModelBytes } from './copy-model.js';

/** EP failures that mean "not available here", as opposed to a model the EP cannot run. */
const UNAVAILABLE =
  /adapter|Failed to load (shared )?library|providers_(cuda|shared)|backend not found|no available backend|libcu|CUDA driver|cudaGetDeviceCount/i;

export class NodeBackend implements Backend {
  readonly name = 'onnxruntime-node';
  private readonly copiers = new Map<string, Promise<ort.InferenceSession>>();

  compiledEps(): EpName[] {
    const names = ort.listSupportedBackends().map((b) => b.name);
    return EP_NAMES.filter((e) => names.includes(e));
  }

  async createSession(model: string | Uint8Array, opts: SessionCreateOptions): Promise<BackendSession> {
    const compiled = this.compiledEps();
    const what = typeof model === 'string' ? model : `a ${model.byteLength}-byte model buffer`;
    const tried: EpFallback[] = [];
    let lastError: Error | undefined;
    for (const ep of opts.eps) {
      if (!compiled.includes(ep)) {
        tried.push({ ep, reason: `onnxruntime-node ${ort.env.versions.common} was built without it` });
        lastError = new EpUnavailableError(ep, tried[tried.length - 1]!.reason, tried.slice(0, -1));
        continue;
      }
      // Only the WebGPU EP can hand outputs back as device buffers in onnxruntime-node.
      const device = ep === 'webgpu' ? new Set(opts.deviceOutputs ?? []) : new Set<string>();
      const loc: Record<string, ort.OnnxValueDataLocation> = {};
      for (const name of device) loc[name] = 'gpu-buffer'; // names not listed stay on the CPU
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [ep],
        logSeverityLevel: opts.logSeverityLevel ?? 3,
        ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
        ...(device.size > 0 ? { preferredOutputLocation: loc } : {}),
        ...(opts.memory === 'lean' && ep === 'cpu' ? { enableCpuMemArena: false, extra: { session: { disable_prepacking: '1' } } } : {}),
      };
      try {
        const session =
          typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
        return new OrtSession(session, ep, tried, device, ort.Tensor, 'onnxruntime-node', true);
      } catch (e) {
        const reason = summarizeOrtError(e);
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
    return new ort.Tensor(type, data, dims) as RtTensor;
  }

  /**
   * Host data of `t`. A WebGPU tensor is copied through a one-node Identity session on the WebGPU
   * EP with a CPU output: onnxruntime-node's own `getData()` on a gpu-buffer tensor is not
   * implemented and aborts the process (ORT 1.30).
   */
  async download(t: RtTensor): Promise<TensorData> {
    if (t.location === 'cpu') return t.data as TensorData;
    if (t.location !== 'gpu-buffer') throw new Error(`download: tensor location '${t.location}' cannot be read (disposed?)`);
    if (t.type !== 'float32' && t.type !== 'float16')
      throw new TypeError(`download: expected a float32 or float16 device tensor, got ${t.type}`);
    let copier = this.copiers.get(t.type);
    if (!copier) {
      copier = ort.InferenceSession.create(copyModelBytes(t.type), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
      this.copiers.set(t.type, copier);
    }
    const out = await (await copier).run({ [COPY_INPUT]: t as unknown as ort.Tensor });
    return out[COPY_OUTPUT]!.data as TensorData;
  }
}

let shared: NodeBackend | undefined;
/** The process-wide onnxruntime-node backend. */
export function nodeBackend(): NodeBackend {
  shared ??= new NodeBackend();
  return shared;
}
