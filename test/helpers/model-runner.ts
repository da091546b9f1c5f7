/**
 * A minimal runner for exported model directories, for the exporter's tests: onnxruntime-node on
 * the CPU, states fed back by the I/O table in mamba2-onnx.json. (The product runtime lives in
 * src/runtime; these tests check the graph, independently of it.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelMeta } from '../../src/package/meta.js';

export type States = Record<string, ort.Tensor>;

export class Runner {
  private constructor(
    readonly meta: ModelMeta,
    private readonly session: ort.InferenceSession,
  ) {}

  static async open(dir: string): Promise<Runner> {
    const meta = JSON.parse(readFileSync(join(dir, 'mamba2-onnx.json'), 'utf8')) as ModelMeta;
    return new Runner(meta, await ort.InferenceSession.create(join(dir, meta.files.model)));
  }

  zeroStates(batch: number): States {
    const s: States = {};
    for (const e of this.meta.io.inputs) {
      if (e.role === 'input_ids') continue;
      const dims = e.shape.map((d) => (typeof d === 'number' ? d : d === 'batch' ? batch : 0)); // KV caches start empty (past_sequence 0)
      s[e.name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    return s;
  }

  /** Runs ids [B][L] on `states` (zeros when absent); returns logits and the next states (past_ names). */
  async forward(ids: number[][], states?: States): Promise<{ logits: Float32Array; dims: readonly number[]; states: States }> {
    const feeds: States = { ...(states ?? this.zeroStates(ids.length)) };
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [ids.length, ids[0]!.length]);
    const out = await this.session.run(feeds);
    const next: States = {};
    for (const [k, v] of Object.entries(out)) if (k.startsWith('present_')) next[k.replace('present_', 'past_')] = v;
    return { logits: out.logits!.data as Float32Array, dims: out.logits!.dims, states: next };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** argmax over the first `n` entries of row `row` of a [rows, V] view. */
export function argmax(logits: Float32Array, V: number, row: number, n: number, exclude?: number): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) {
    if (i === exclude) continue;
    const v = logits[row * V + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}
