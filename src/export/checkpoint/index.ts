/**
 * Finds and opens the weights in a model directory:
 *   model.safetensors                 → HF format, one file
 *   model.safetensors.index.json      → HF format, sharded
 *   pytorch_model.bin                 → mamba_ssm format (torch.save zip)
 *   pytorch_model.bin.index.json      → mamba_ssm format, sharded
 * (config.json is read elsewhere.)
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, type TensorStore } from './types.js';
import { SAFETENSORS_INDEX_FILE, openSafetensors, openSafetensorsIndex } from './safetensors.js';
import { openShardedIndex } from './sharded.js';
import { openTorchCheckpoint } from './torch.js';

export type CheckpointFormat = 'hf' | 'mamba_ssm';

export interface OpenedCheckpoint {
  readonly store: TensorStore;
  readonly format: CheckpointFormat;
  /** The file that was opened (the index file for a sharded checkpoint). */
  readonly weightsPath: string;
}

const CANDIDATES: readonly { file: string; format: CheckpointFormat; open: (p: string) => Promise<TensorStore> }[] = [
  { file: 'model.safetensors', format: 'hf', open: openSafetensors },
  { file: SAFETENSORS_INDEX_FILE, format: 'hf', open: openSafetensorsIndex },
  { file: 'pytorch_model.bin', format: 'mamba_ssm', open: openTorchCheckpoint },
  { file: 'pytorch_model.bin.index.json', format: 'mamba_ssm', open: (p) => openShardedIndex(p, openTorchCheckpoint) },
];

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Open the checkpoint in `dir`, trying the files above in that order. */
export async function openCheckpoint(dir: string): Promise<OpenedCheckpoint> {
  let dirStat: Awaited<ReturnType<typeof stat>>;
  try {
    dirStat = await stat(dir);
  } catch (err) {
    throw new CheckpointError(dir, `cannot open checkpoint directory: ${(err as Error).message}`);
  }
  if (!dirStat.isDirectory()) throw new CheckpointError(dir, 'expected a checkpoint directory, got a file');
  for (const c of CANDIDATES) {
    const weightsPath = join(dir, c.file);
    if (await isFile(weightsPath)) return { store: await c.open(weightsPath), format: c.format, weightsPath };
  }
  throw new CheckpointError(dir, `no weights found: looked for ${CANDIDATES.map((c) => c.file).join(', ')}`);
}

export { CheckpointError } from './types.js';
