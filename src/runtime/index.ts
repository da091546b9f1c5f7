/**
 * The runtime's public API: load an exported Mamba-2 model, run it, generate text.
 *
 *   import { Mamba2Model } from 'mamba2-onnx/runtime';
 *   const m = await Mamba2Model.load(dir, { ep: 'cpu' });
 *   const { text } = await m.generate('Once upon a time', { maxNewTokens: 32 });
 */
export { Mamba2Model, type LoadOptions, type CreateOptions } from './model.js';
export { Logits, type ForwardIds, type ForwardModel, type ForwardResult } from './forward-model.js';
export type { GenerateResult } from './generate.js';
export { RowDecoder, stopIdSet, type FinishReason, type RowDecoderOptions, type StreamChunk } from './decoder.js';
export type { GenerateOptions } from './options.js';
export {
  EP_NAMES,
  EP_HINTS,
  EpUnavailableError,
  SessionCreateError,
  parseEpList,
  MEMORY_POLICIES,
  type MemoryPolicy,
  type Backend,
  type BackendSession,
  type EpName,
  type EpFallback,
  type RtTensor,
  type ValueInfo,
} from './backend.js';
export {
  BACKEND_NAMES,
  CapiBackend,
  CapiUnavailableError,
  DeviceDecodeRunner,
  OrtCallError,
  capiBackend,
  preferredBackend,
  type BackendName,
  type CapiBackendOptions,
  type CapiEpOptions,
  type DeviceDecodeRunnerOptions,
  type PreferredBackend,
} from './capi/index.js';
export { Mamba2State, ModelMismatchError, stateFromHost, stateSpecs, zeroState, type HostState, type StateSpec } from './state.js';
export { concatHostStates, sliceHostState } from './state-rows.js';
export { serializeState, deserializeState, StateFormatError, STATE_FORMAT_VERSION } from './state-io.js';
export {
  mulberry32,
  randomSeed,
  sampleToken,
  samplingDistribution,
  draw,
  type SamplingParams,
  type Distribution,
  type Rng,
} from './sampling.js';
export { TextTokenizer } from './tokenizer.js';
export { IncrementalDecoder, StopStringMatcher } from './detokenize.js';
export { parseModelMeta, ModelMetaError } from '../package/parse-meta.js';
