/**
 * Execution providers through the C API, each appended to an OrtSessionOptions:
 *
 *   cpu     always there (nothing to append); 'lean' memory turns off the arena and prepacking
 *   cuda    CreateCUDAProviderOptions → UpdateCUDAProviderOptions(device_id, enable_cuda_graph, …)
 *           → SessionOptionsAppendExecutionProvider_CUDA_V2 (needs libonnxruntime_providers_cuda)
 *   webgpu  SessionOptionsAppendExecutionProvider("WebGPU", deviceId, enableGraphCapture, …)
 *
 * and the OrtMemoryInfo that names each EP's device memory, for outputs kept on the device.
 */
import type { EpName } from '../backend.js';
import { ORT_ENUM, type Ptr } from './api-table.js';
import type { OrtLib } from './ort-api.js';

/** EP settings the onnxruntime-node binding cannot pass; all optional. */
export interface CapiEpOptions {
  /** GPU index for CUDA / WebGPU (default 0). */
  deviceId?: number;
  /**
   * CUDA graphs (`enable_cuda_graph`): the first run captures, later runs replay. Every input and
   * output must then be bound to the same device buffers on every run (DeviceDecodeRunner does).
   */
  cudaGraph?: boolean;
  /** WebGPU graph capture (`enableGraphCapture`), with the same fixed-buffer rule as cudaGraph. */
  webgpuGraphCapture?: boolean;
  /** Extra CUDA provider options (`cudnn_conv_algo_search`, `gpu_mem_limit`, …), passed as given. */
  cudaOptions?: Readonly<Record<string, string>>;
  /** Extra WebGPU provider options (`validationMode`, `storageBufferCacheMode`, …), passed as given. */
  webgpuOptions?: Readonly<Record<string, string>>;
}

/** ORT's provider names (GetAvailableProviders) of the backend's EPs. */
export const ORT_PROVIDER: Readonly<Record<EpName, string>> = {
  cpu: 'CPUExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
};

/** Whether the EP's sessions use graph capture with these options. */
/** Opt-in switch for the C-API backend's WebGPU path (see appendProvider). */
export const CAPI_WEBGPU_ENV = 'MAMBA2_ONNX_CAPI_WEBGPU';

export function capturesGraph(ep: EpName, o: CapiEpOptions): boolean {
  return (ep === 'cuda' && o.cudaGraph === true) || (ep === 'webgpu' && o.webgpuGraphCapture === true);
}

/** Set the options every EP shares: log severity, CPU threads, memory policy. */
export function configureSession(
  lib: OrtLib,
  so: Ptr,
  o: { logSeverityLevel: number; intraOpNumThreads?: number; lean: boolean; capture?: boolean },
): void {
  lib.call('SetSessionLogSeverityLevel', so, o.logSeverityLevel);
  // Captured graphs keep the addresses of their intermediates; a memory pattern sized per input
  // shape may hand a later run of another batch size other addresses (off: MAMBA2_ONNX_CAPI_MEMPATTERN=1 keeps it).
  if (o.capture && process.env['MAMBA2_ONNX_CAPI_MEMPATTERN'] !== '1') lib.call('DisableMemPattern', so);
  if (o.intraOpNumThreads) lib.call('SetIntraOpNumThreads', so, o.intraOpNumThreads);
  if (o.lean) {
    lib.call('DisableCpuMemArena', so);
    lib.call('AddSessionConfigEntry', so, 'session.disable_prepacking', '1');
  }
}

const keysValues = (m: Readonly<Record<string, string>>): [string[], string[]] => [Object.keys(m), Object.values(m)];

/** Append `ep` to `so` (cpu: nothing to do). Throws OrtCallError when the EP cannot be set up here. */
export function appendProvider(lib: OrtLib, so: Ptr, ep: EpName, o: CapiEpOptions): void {
  const device = String(o.deviceId ?? 0);
  if (ep === 'cpu') return;
  if (ep === 'cuda') {
    const cuda = lib.make('CreateCUDAProviderOptions');
    try {
      const [keys, values] = keysValues({ device_id: device, ...(o.cudaGraph ? { enable_cuda_graph: '1' } : {}), ...o.cudaOptions });
      lib.call('UpdateCUDAProviderOptions', cuda, keys, values, keys.length);
      lib.call('SessionOptionsAppendExecutionProvider_CUDA_V2', so, cuda);
    } finally {
      lib.raw.ReleaseCUDAProviderOptions(cuda); // the session options keep their own copy
    }
    return;
  }
  if (ep === 'webgpu') {
    // Fail closed: on the H200 (ORT 1.29, 2026-12-03) sessions on this path crashed the process at
    // their first run (BENCHMARKS.md, "C-API backend on the GPU"); onnxruntime-node's WebGPU works.
    if (process.env[CAPI_WEBGPU_ENV] !== '1') {
      throw new Error(
        `the C-API backend's WebGPU path is off: it crashed the process at the first run on ORT 1.29 (set ${CAPI_WEBGPU_ENV}=1 to try it); use the onnxruntime-node backend for WebGPU`,
      );
    }
    const [keys, values] = keysValues({
      deviceId: device,
      ...(o.webgpuGraphCapture ? { enableGraphCapture: '1' } : {}),
      ...o.webgpuOptions,
    });
    lib.call('SessionOptionsAppendExecutionProvider', so, 'WebGPU', keys, values, keys.length);
    return;
  }
  throw new RangeError(`unknown execution provider '${String(ep)}', expected one of cpu, cuda, webgpu`);
}

/** The OrtMemoryInfo of the EP's device memory (caller releases it), or null for the CPU EP. */
export function deviceMemoryInfo(lib: OrtLib, ep: EpName, o: CapiEpOptions): Ptr | null {
  if (ep === 'cpu') return null;
  // CUDA memory is per device; the WebGPU EP's buffer allocator always reports device 0
  const [name, id] = ep === 'cuda' ? ['Cuda', o.deviceId ?? 0] : ['WebGPU_Buffer', 0];
  return lib.make('CreateMemoryInfo', name, ORT_ENUM.OrtDeviceAllocator, id, ORT_ENUM.OrtMemTypeDefault);
}
