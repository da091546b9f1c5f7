/**
 * The OpenAI-compatible server: continuous batching over one Mamba2Model with a prefix-state
 * cache (`mamba2-onnx serve`).
 *
 *   import { startServer } from 'mamba2-onnx/server';
 *   const s = await startServer(() => Mamba2Model.load(dir, { deviceState: false }), { port: 8000 });
 */
export { startServer, type RunningServer, type ModelSource } from './server.js';
export { DEFAULT_SERVE_OPTIONS, resolveServeOptions, type ServeOptions } from './options.js';
export { Engine, type EngineOptions } from './engine.js';
export { PrefixCache, type CacheEntry, type PrefixCacheStats } from './prefix-cache.js';
export type { StateRow } from '../runtime/state-rows.js';
export { ApiError, QueueFullError, type ApiErrorBody } from './errors.js';
export { prometheusText, type EngineStats } from './metrics.js';
export { parseCompletionRequest, type CompletionRequest } from './validate.js';
export type { SequenceResult, SequenceSink, TokenChunk } from './sequence.js';
export type { FinishReason } from '../runtime/decoder.js';
export { openAiFinishReason, type OpenAiFinishReason } from './completions.js';
