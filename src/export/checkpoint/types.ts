/**
 * A checkpoint as a lazy tensor store: the exporter asks for one tensor at a time, so that a
 * large checkpoint is never held in memory twice.
 */

/** Element types found in checkpoints (safetensors names; torch storages map onto these). */
export type CkptDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface TensorInfo {
  readonly key: string;
  readonly dtype: CkptDType;
  readonly shape: readonly number[];
}

export interface TensorStore {
  /** 'safetensors' | 'torch' | 'random' (seeded random weights for presets). */
  readonly kind: string;
  /** Every tensor key, sorted. */
  keys(): string[];
  /** Shape and dtype without reading data; undefined when the key is absent. */
  info(key: string): TensorInfo | undefined;
  /**
   * The tensor's values converted to float32 (F16/BF16/F64 converted, integer types refused).
   * Each call reads from the source again: callers drop the array once written.
   */
  readFloat32(key: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A checkpoint that cannot be read. `path` names the file; `detail` says what is wrong. */
export class CheckpointError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = 'CheckpointError';
  }
}
