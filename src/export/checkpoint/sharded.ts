/** Sharded checkpoints (`*.index.json` + shards), whatever the shards' format. */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, type TensorInfo, type TensorStore } from './types.js';

/** Largest index file read (real ones are a few hundred KB). */
const MAX_INDEX_BYTES = 100_000_000;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Several stores seen as one; each key lives in exactly one part. */
class ShardedStore implements TensorStore {
  private readonly sorted: string[];

  constructor(
    readonly kind: string,
    readonly path: string,
    private readonly owner: ReadonlyMap<string, TensorStore>,
    private readonly parts: readonly TensorStore[],
  ) {
    this.sorted = [...owner.keys()].sort();
  }

  keys(): string[] {
    return [...this.sorted];
  }

  info(key: string): TensorInfo | undefined {
    return this.owner.get(key)?.info(key);
  }

  readFloat32(key: string): Promise<Float32Array> {
    const part = this.owner.get(key);
    if (!part) return Promise.reject(new CheckpointError(this.path, `no tensor '${key}' in any shard`));
    return part.readFloat32(key);
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.close()));
  }
}

/** Parse the index: `weight_map` of key → shard file name (a plain name inside the same directory). */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  let size: number;
  try {
    size = (await stat(indexPath)).size;
  } catch (err) {
    throw new CheckpointError(indexPath, `cannot open: ${(err as Error).message}`);
  }
  if (size > MAX_INDEX_BYTES) throw new CheckpointError(indexPath, `index is ${size} bytes, over the ${MAX_INDEX_BYTES}-byte limit`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new CheckpointError(indexPath, `not valid JSON: ${(err as Error).message}`);
  }
  const weightMap = isRecord(parsed) ? parsed['weight_map'] : undefined;
  if (!isRecord(weightMap)) throw new CheckpointError(indexPath, 'expected an object with a "weight_map" object');
  const map = new Map<string, string>();
  for (const [key, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '' || file !== basename(file) || file === '.' || file === '..' || file.includes('\\')) {
      throw new CheckpointError(indexPath, `weight_map['${key}'] must be a file name in the same directory, got ${JSON.stringify(file)}`);
    }
    map.set(key, file);
  }
  if (map.size === 0) throw new CheckpointError(indexPath, 'weight_map is empty');
  return map;
}

/**
 * Open a sharded checkpoint from its index file (`weight_map`: key → shard file in the same
 * directory), each shard with `openPart`. Every key of `weight_map` must be in the shard it names;
 * a key found in two shards is refused.
 */
export async function openShardedIndex(indexPath: string, openPart: (path: string) => Promise<TensorStore>): Promise<TensorStore> {
  const dir = dirname(indexPath);
  const weightMap = await readIndex(indexPath);
  const files = [...new Set(weightMap.values())].sort();
  const parts: TensorStore[] = [];
  try {
    for (const f of files) parts.push(await openPart(join(dir, f)));
    const owner = new Map<string, TensorStore>();
    for (const [i, part] of parts.entries()) {
      for (const key of part.keys()) {
        const prev = owner.get(key);
        if (prev) {
          throw new CheckpointError(indexPath, `tensor '${key}' is in two shards: ${files[parts.indexOf(prev)]} and ${files[i]}`);
        }
        owner.set(key, part);
      }
    }
    for (const [key, file] of weightMap) {
      const part = owner.get(key);
      if (!part || files[parts.indexOf(part)] !== file) {
        throw new CheckpointError(
          indexPath,
          `weight_map says '${key}' is in ${file}, but ${part ? `it is in ${files[parts.indexOf(part)]}` : 'that file has no such tensor'}`,
        );
      }
    }
    return new ShardedStore(parts[0]?.kind ?? 'sharded', indexPath, owner, parts);
  } catch (err) {
    await Promise.all(parts.map((p) => p.close()));
    throw err;
  }
}
