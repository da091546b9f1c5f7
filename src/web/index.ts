/**
 * The browser entry (`mamba2-onnx/web`): load an exported model from URLs or picked files and
 * generate with the same API as in Node, on onnxruntime-web (WebGPU, wasm as fallback).
 *
 *   import { loadModel } from 'mamba2-onnx/web';
 *   const { model, ep } = await loadModel('/models/tiny/', { onProgress: (p) => bar.value = p.loaded / p.total });
 *   for await (const { text } of model.stream('Once upon a time', { maxNewTokens: 64 })) out.textContent += text;
 *
 * The page must be served with COOP `same-origin` + COEP `require-corp` for multi-threaded wasm, and
 * onnxruntime-web's .wasm/.mjs files must be reachable (pass `wasmPaths` when they are not served
 * beside onnxruntime-web's module).
 */
export { loadModel, type EpChoice, type LoadProgress, type LoadedFile, type WebLoadOptions, type WebModel } from './load.js';
export { detectWebGpu, type GpuInfo } from './gpu.js';
export { CACHE_NAME, clearModelCache, fetchBytes, isCached, type FetchOptions, type Fetched } from './fetch.js';
export { chooseVariant, directoryUrl, dtypePreference, openVariants, type ModelSource, type Variant } from './package.js';
export {
  WebBackend,
  WebEpUnavailableError,
  configureWebRuntime,
  summarizeWebError,
  type ExternalDataFile,
  type WebBackendOptions,
  type WebEpName,
  type WebRuntimeOptions,
} from '../runtime/web.js';
export { Mamba2Model, type CreateOptions } from '../runtime/model.js';
export { Logits, type ForwardIds, type ForwardResult } from '../runtime/forward-model.js';
export type { GenerateResult } from '../runtime/generate.js';
export type { StreamChunk, FinishReason } from '../runtime/decoder.js';
export type { GenerateOptions } from '../runtime/options.js';
export { EpUnavailableError, SessionCreateError, type EpFallback } from '../runtime/backend.js';
export { Mamba2State } from '../runtime/state.js';
export { TextTokenizer } from '../runtime/tokenizer.js';
export { parseModelMeta, ModelMetaError } from '../package/parse-meta.js';
export type { ModelMeta, WeightDType } from '../package/meta.js';
