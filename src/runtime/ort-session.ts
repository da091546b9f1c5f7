/**
 * The BackendSession over an ONNX Runtime InferenceSession, shared by the onnxruntime-node and
 * onnxruntime-web backends (both expose onnxruntime-common's InferenceSession and Tensor).
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { BackendSession, EpFallback, EpName, RtTensor, ValueInfo } from './backend.js';

export class OrtSession implements BackendSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  private released = false;

  constructor(
    private readonly session: InferenceSession,
    readonly ep: EpName,
    readonly fallbacks: readonly EpFallback[],
    readonly deviceOutputs: ReadonlySet<string>,
    /** The backend's own Tensor class (feeds made by another backend are refused) and its name. */
    private readonly tensorClass: abstract new (...args: never[]) => Tensor,
    private readonly backendName: string,
    /** onnxruntime-node writes pre-allocated host outputs in place (faster CPU decode at batch 1: BENCHMARKS.md); not relied on for onnxruntime-web. */
    readonly writesInto = false,
  ) {
    const info = (m: InferenceSession.ValueMetadata): ValueInfo =>
      m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] };
    this.inputs = session.inputMetadata.map(info);
    this.outputs = session.outputMetadata.map(info);
  }

  async run(feeds: Record<string, RtTensor>, into?: Record<string, RtTensor>): Promise<Record<string, RtTensor>> {
    if (this.released) throw new Error('session.run: the session was released');
    for (const [name, t] of Object.entries(feeds)) {
      if (!(t instanceof this.tensorClass)) {
        throw new TypeError(`session.run: feed '${name}' must be a tensor made by the ${this.backendName} backend, got ${String(t)}`);
      }
    }
    if (into && this.writesInto) {
      // every output is fetched: the given ones are written in place, the others allocated by ORT
      const fetches: Record<string, Tensor | null> = {};
      for (const o of this.outputs) fetches[o.name] = (into[o.name] as unknown as Tensor | undefined) ?? null;
      return (await this.session.run(feeds as unknown as InferenceSession.FeedsType, fetches as InferenceSession.FetchesType)) as Record<
        string,
        RtTensor
      >;
    }
    return (await this.session.run(feeds as unknown as InferenceSession.FeedsType)) as Record<string, RtTensor>;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
