/**
 * mamba2-onnx for Node: export Mamba-2 checkpoints to ONNX and run them.
 *
 *   import { exportModel, Mamba2Model } from 'mamba2-onnx';
 *
 * Subpaths: 'mamba2-onnx/export', 'mamba2-onnx/runtime', 'mamba2-onnx/server', 'mamba2-onnx/web'
 * (the browser entry). The package ships TypeScript sources: run them with tsx or a bundler.
 */
export { exportModel, type ExportOptions, type ExportResult, type ExportSource } from './export/index.js';
export * from './runtime/index.js';
export { startServer } from './server/index.js';
