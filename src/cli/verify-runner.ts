/**
 * A small forward-pass runner for `verify`: one onnxruntime session (through the runtime's node
 * backend, so EP choice and fallback behave as everywhere else), zero states from the model's io
 * table, and the present_* states fed back as past_* to continue a sequence.
 */
import type { ModelMeta } from '../export/model-meta.js';
import { IO_NAMES } from '../export/io.js';
import type { BackendSession, EpFallback, EpName, RtTensor } from '../runtime/backend.js';
import { nodeBackend } from '../runtime/node.js';
import { Mamba2State, stateSpecs, zeroState, type StateSpec } from '../runtime/state.js';

export interface ForwardResult {
  /** [B, L, V] row-major. */
  logits: Float32Array;
  dims: readonly [number, number, number];
  state: Mamba2State;
}

export class VerifyRunner {
  private constructor(
    private readonly session: BackendSession,
    private readonly specs: readonly StateSpec[],
    readonly meta: ModelMeta,
  ) {}

  static async load(modelPath: string, meta: ModelMeta, eps: readonly EpName[]): Promise<VerifyRunner> {
    const specs0 = meta.io.outputs.filter((e) => e.role === 'conv_state' || e.role === 'ssm_state').map((e) => e.name);
    const session = await nodeBackend().createSession(modelPath, { eps, deviceOutputs: specs0 });
    try {
      return new VerifyRunner(session, stateSpecs(meta, session.inputs, session.outputs), meta);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  get ep(): EpName {
    return this.session.ep;
  }

  get fallbacks(): readonly EpFallback[] {
    return this.session.fallbacks;
  }

  get vocabSize(): number {
    return this.meta.config.vocabSize;
  }

  zeroState(batch: number): Mamba2State {
    return zeroState(nodeBackend(), this.specs, batch);
  }

  /** Runs `ids` ([B][L], equal row lengths, ids in [0, vocab)) on top of `state` (not consumed). */
  async forward(ids: readonly (readonly number[])[], state: Mamba2State): Promise<ForwardResult> {
    const batch = ids.length;
    const len = ids[0]?.length ?? 0;
    if (batch !== state.batch) throw new RangeError(`forward: ids have ${batch} rows, the state has batch ${state.batch}`);
    if (len === 0 || ids.some((r) => r.length !== len)) throw new RangeError('forward: expected ids rows of one length ≥ 1');
    const flat = new BigInt64Array(batch * len);
    ids.forEach((row, b) =>
      row.forEach((id, t) => {
        if (!Number.isSafeInteger(id) || id < 0 || id >= this.vocabSize) {
          throw new RangeError(`forward: token id at [${b}][${t}]: expected an integer in [0, ${this.vocabSize}), got ${id}`);
        }
        flat[b * len + t] = BigInt(id);
      }),
    );
    const feeds: Record<string, RtTensor> = { [IO_NAMES.inputIds]: nodeBackend().tensor('int64', flat, [batch, len]) };
    const tensors = state.tensors;
    this.specs.forEach((s, i) => (feeds[s.input] = tensors[i]!));
    const out = await this.session.run(feeds);
    const logitsT = out[IO_NAMES.logits];
    if (logitsT === undefined) throw new Error(`forward: the session returned no '${IO_NAMES.logits}' output`);
    const dims = logitsT.dims;
    if (dims.length !== 3 || dims[0] !== batch || dims[1] !== len) {
      throw new Error(`forward: logits expected dims [${batch}, ${len}, V], got [${dims.join(', ')}]`);
    }
    const logits = (await logitsT.getData()) as Float32Array;
    const next = new Mamba2State(
      this.specs,
      batch,
      this.specs.map((s) => {
        const t = out[s.output];
        if (t === undefined) throw new Error(`forward: the session returned no '${s.output}' output`);
        return t;
      }),
    );
    return { logits, dims: [batch, len, dims[2]!], state: next };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
