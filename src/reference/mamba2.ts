/**
 * Plain TypeScript Mamba-2 reference (float64, sequential SSD), written from ../shared/spec/mamba2.md.
 * The ground truth for tests of the ONNX graph and its blocks:
 * - blocks.ts: rmsNorm, gatedRmsNorm (grouped), causalConv (with state), softplus, dtPipeline, linear
 * - ssd.ts: ssdSequential, the recurrence
 * - mixer.ts: one mixer with states; model.ts: the language model, greedy decoding
 */
export * from './tensor.js';
export * from './blocks.js';
export * from './ssd.js';
export * from './mixer.js';
export * from './model.js';
