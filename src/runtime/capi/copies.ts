/**
 * Copies between host and device memory with ONNX Runtime alone (no CUDA / WebGPU calls of ours):
 *
 *   CopyTensors (OrtApi, ORT ≥ 1.23)   works where the EP registered its data transfer with the Env
 *                                      (plugin EPs); elsewhere ORT says ORT_NOT_IMPLEMENTED.
 *   Identity sessions, one per (EP, device, element type):  y = Identity(x) with x bound to the
 *                                      source and y bound to host memory (download) or to a
 *                                      preallocated tensor (upload, device → device).
 */
import type { EpName, TensorData } from '../backend.js';
import { ONNX_DTYPE, type DType } from '../../onnx/dtype.js';
import { encodeModel, type ValueInfoProto } from '../../onnx/proto.js';
import type { OrtLib } from './ort-api.js';
import type { CapiEpOptions } from './providers.js';
import { CapiSession } from './session.js';
import { CapiTensor, ELEMENT_TYPES, type Downloader, type TensorOrigin } from './tensor.js';

const X = 'x';
const Y = 'y';

/** A one-node model `y = Identity(x)` (any shape) for one element type. */
export function identityModelBytes(type: DType): Uint8Array {
  const io = (name: string): ValueInfoProto => ({ name, type: { tensorType: { elemType: ONNX_DTYPE[type] } }, metadataProps: [] });
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mamba2-onnx runtime (C-API copies)',
    metadataProps: [],
    functions: [],
    graph: {
      name: 'copy',
      node: [{ input: [X], output: [Y], name: 'copy', opType: 'Identity', attribute: [], metadataProps: [] }],
      initializer: [],
      input: [io(X)],
      output: [io(Y)],
      valueInfo: [],
      metadataProps: [],
    },
  });
}

const COPYABLE: readonly string[] = ['float32', 'float16', 'int64', 'int32'];

export class Copier {
  private readonly sessions = new Map<string, Promise<CapiSession>>();

  constructor(
    private readonly lib: OrtLib,
    private readonly downloader: Downloader,
  ) {}

  /** A new host array with the data of `t`, through CopyTensors (throws where ORT cannot). */
  copyTensors(t: CapiTensor): TensorData {
    const spec = ELEMENT_TYPES[t.type];
    if (!spec) throw new TypeError(`copy: unsupported element type ${t.type}`);
    const dst = CapiTensor.host(this.lib, t.type, new spec.array(t.dims.reduce((a, b) => a * b, 1)) as unknown as TensorData, t.dims);
    try {
      this.lib.call('CopyTensors', this.lib.env(), BigUint64Array.of(t.ortValue()), BigUint64Array.of(dst.ortValue()), null, 1);
      return dst.data;
    } finally {
      dst.dispose();
    }
  }

  /** A new host array with the data of `t`, through the Identity session on `on` (t's EP). */
  async toHost(t: CapiTensor, on: TensorOrigin): Promise<TensorData> {
    const out = await (await this.session(on, t.type)).runBound({ [X]: t }, { [Y]: 'cpu' });
    return out[Y]!.data;
  }

  /** Copy `src` into the preallocated `dst` (same type and dims; either may be host or device) on `on`. */
  async into(dst: CapiTensor, src: CapiTensor, on: TensorOrigin): Promise<void> {
    if (dst.type !== src.type || dst.dims.join() !== src.dims.join()) {
      throw new RangeError(
        `copy: expected the same type and dims, got ${src.type} [${src.dims.join(', ')}] → ${dst.type} [${dst.dims.join(', ')}]`,
      );
    }
    await (await this.session(on, src.type)).runBound({ [X]: src }, { [Y]: dst });
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => undefined))?.release();
  }

  private session(on: TensorOrigin, type: string): Promise<CapiSession> {
    if (!COPYABLE.includes(type)) throw new TypeError(`copy: expected a ${COPYABLE.join(', ')} tensor, got ${type}`);
    const key = `${on.ep}:${on.epOptions.deviceId ?? 0}:${type}`;
    let s = this.sessions.get(key);
    if (!s) {
      const ep: EpName = on.ep;
      const epOptions: CapiEpOptions = on.epOptions.deviceId !== undefined ? { deviceId: on.epOptions.deviceId } : {}; // no graph capture
      s = CapiSession.open(this.lib, identityModelBytes(type as DType), {
        ep,
        fallbacks: [],
        epOptions,
        deviceOutputs: [],
        logSeverityLevel: 3,
        downloader: this.downloader,
      });
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }
}
