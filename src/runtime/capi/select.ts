/**
 * Choosing a backend by name: 'node' (onnxruntime-node, the default) or 'capi' (ONNX Runtime's C
 * API through koffi). `namedBackend` is strict; `preferredBackend('capi')` falls back to
 * onnxruntime-node with a one-line reason when the C-API backend cannot load here.
 */
import type { Backend } from '../backend.js';
import { describe } from '../backend.js';
import { capiBackend, type CapiBackendOptions } from './capi-backend.js';

export type BackendName = 'node' | 'capi';
export const BACKEND_NAMES: readonly BackendName[] = ['node', 'capi'];

function checkName(name: unknown, argName: string): BackendName {
  if (typeof name === 'string' && (BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new RangeError(
    `${argName}: unknown backend ${describe(name)}, expected ${BACKEND_NAMES.map((n) => `'${n}'`).join(' or ')} (or a Backend object)`,
  );
}

/** The backend called `name`; throws (one line) when it cannot load. */
export async function namedBackend(name: BackendName, opts?: CapiBackendOptions, argName = 'opts.backend'): Promise<Backend> {
  if (checkName(name, argName) === 'capi') return capiBackend(opts);
  return (await import('#node-backend')).nodeBackend();
}

export interface PreferredBackend {
  backend: Backend;
  /** Why the preferred backend is not the one returned (absent when it is). */
  fallbackReason?: string;
}

/** The backend called `name`, or onnxruntime-node with the reason when 'capi' cannot load here. */
export async function preferredBackend(name: BackendName = 'capi', opts?: CapiBackendOptions): Promise<PreferredBackend> {
  if (checkName(name, 'backend') === 'node') return { backend: await namedBackend('node') };
  try {
    return { backend: capiBackend(opts) };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { backend: await namedBackend('node'), fallbackReason: `the C-API backend is unavailable (${why}); using onnxruntime-node` };
  }
}
