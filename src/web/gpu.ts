/**
 * What this browser offers for WebGPU, asked before any model is loaded: whether an adapter exists
 * (and why not), and whether it has `shader-f16` (fp16 weights then run in fp16 on the GPU).
 */

/** The part of the WebGPU API used here (TypeScript's DOM lib does not declare it). */
interface GpuAdapterLike {
  readonly features: ReadonlySet<string>;
  readonly info?: { readonly vendor?: string; readonly architecture?: string; readonly description?: string };
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}

export interface GpuInfo {
  /** True when a WebGPU adapter was found. */
  available: boolean;
  /** Why WebGPU is unavailable (absent when available). */
  reason?: string;
  /** The adapter supports `shader-f16`. */
  shaderF16: boolean;
  /** Adapter vendor / architecture / description, when the browser tells. */
  adapter?: string;
}

let cached: Promise<GpuInfo> | undefined;

/** Probe WebGPU once per page (the answer does not change while the page lives). */
export function detectWebGpu(): Promise<GpuInfo> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<GpuInfo> {
  const gpu = typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GpuLike }).gpu : undefined;
  if (!gpu) {
    const insecure = typeof isSecureContext === 'boolean' && !isSecureContext;
    return {
      available: false,
      shaderF16: false,
      reason: insecure
        ? 'navigator.gpu is missing: WebGPU needs a secure context (https:// or http://localhost)'
        : 'navigator.gpu is missing: this browser has no WebGPU (or it is turned off)',
    };
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { available: false, shaderF16: false, reason: `requestAdapter() failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!adapter) {
    return {
      available: false,
      shaderF16: false,
      reason: 'no WebGPU adapter: the GPU is blocklisted, disabled, or absent (requestAdapter() returned null)',
    };
  }
  const i = adapter.info;
  const name = i ? [i.vendor, i.architecture, i.description].filter((s) => s && s !== '').join(' ') : '';
  return { available: true, shaderF16: adapter.features.has('shader-f16'), ...(name ? { adapter: name } : {}) };
}
