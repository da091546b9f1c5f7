/**
 * `mamba2-onnx.json`: the small JSON written beside model.onnx. It describes the model and its
 * I/O so that a runtime needs nothing else (the runtime also checks it against the session's own
 * input metadata).
 */
import type { Mamba2Config } from './config.js';
import type { IOTable } from './io.js';

export const META_FILE = 'mamba2-onnx.json';
export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** Tokenizer files copied from a checkpoint directory into the package when present. */
export const TOKENIZER_FILES = [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, 'special_tokens_map.json', 'generation_config.json'];

export type SsdForm = 'chunked' | 'function' | 'contrib' | 'scan';
export type WeightDType = 'fp32' | 'fp16' | 'int8' | 'int4';

/** How int8/int4 weights were stored (MatMulNBits). */
export interface QuantizationMeta {
  method: 'MatMulNBits';
  bits: 4 | 8;
  blockSize: number;
  accuracyLevel: number;
  symmetric: false;
  /** Tensors stored quantized (roles; 'moe': the experts and latent projections, not the router); the rest are float32. */
  quantized: ('embedding' | 'in_proj' | 'out_proj' | 'lm_head' | 'attention' | 'mlp' | 'moe')[];
}

export interface ModelMeta {
  format: 'mamba2-onnx';
  formatVersion: 1;
  /** Where the weights came from: a checkpoint directory's basename or `preset:NAME@seed`. */
  source: string;
  config: Mamba2Config;
  io: IOTable;
  ssdForm: SsdForm;
  weightDType: WeightDType;
  /** Present for int8/int4 exports. */
  quantization?: QuantizationMeta;
  /**
   * How one-token decoding avoids the chunked path: 'if' = an If on sequence == 1 inside
   * model.onnx (the default); 'only' = the graph is the single step alone (input_ids [batch, 1]);
   * 'none' = the sequence path serves one token too (both for measurements: export --paths).
   */
  singleStep: 'if' | 'only' | 'none';
  files: { model: string; data?: string; tokenizer?: string[] };
  opsets: Record<string, number>;
  exporterVersion: string;
}
