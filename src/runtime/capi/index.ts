/**
 * The C-API backend's public surface (re-exported by src/runtime/index.ts and `#node-backend`).
 * Node only; koffi and the ONNX Runtime library load on first use, not on import.
 */
export { CapiBackend, capiBackend, summarizeCapiError, type CapiBackendOptions, type CapiSessionOptions } from './capi-backend.js';
export { CapiSession, type OutputTarget } from './session.js';
export { CapiTensor } from './tensor.js';
export { CapiUnavailableError, OrtCallError, ORT_LIB_ENV, defaultOrtLibrary, loadOrt, type OrtLib } from './ort-api.js';
export type { CapiEpOptions } from './providers.js';
export { BACKEND_NAMES, namedBackend, preferredBackend, type BackendName, type PreferredBackend } from './select.js';
export { DeviceDecodeRunner, type DeviceDecodeRunnerOptions } from './device-runner.js';
