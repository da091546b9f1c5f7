/**
 * A one-node ONNX model (`y = Identity(x)`, any shape) for one element type. onnxruntime-node
 * cannot download a WebGPU output tensor (its `getData()` has no download path there), so the node
 * backend runs device tensors through this model on the WebGPU EP with a CPU output to read them.
 */
import { ONNX_DTYPE } from '../onnx/dtype.js';
import { encodeModel, type ValueInfoProto } from '../onnx/proto.js';

export const COPY_INPUT = 'x';
export const COPY_OUTPUT = 'y';

export function copyModelBytes(dtype: 'float32' | 'float16'): Uint8Array {
  const io = (name: string): ValueInfoProto => ({ name, type: { tensorType: { elemType: ONNX_DTYPE[dtype] } }, metadataProps: [] });
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mamba2-onnx runtime (device → host copy)',
    metadataProps: [],
    functions: [],
    graph: {
      name: 'copy',
      node: [{ input: [COPY_INPUT], output: [COPY_OUTPUT], name: 'copy', opType: 'Identity', attribute: [], metadataProps: [] }],
      initializer: [],
      input: [io(COPY_INPUT)],
      output: [io(COPY_OUTPUT)],
      valueInfo: [],
      metadataProps: [],
    },
  });
}
