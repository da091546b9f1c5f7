/**
 * A tiny recurrent ONNX model with the exact Mamba-2 I/O contract (src/package/io.ts), for testing
 * the runtime's session, state and generation code against the real onnxruntime without waiting
 * for the exporter. It is NOT Mamba-2: one "layer" whose states are easy to reason about:
 *
 *   emb     = E[input_ids]                                 [B,L,V]
 *   ssm'    = past_ssm + Σ_t emb[t]                        [B,1,1,V]   (H=1, P=1, N=V)
 *   win     = concat(past_conv, ids as float, axis=2)      [B,2,2+L]   (convDim 2, K-1 = 2)
 *   conv'   = win[:, :, -2:]                               [B,2,2]
 *   logits  = past_ssm + cumsum_t(emb) + 0.01·Σ_c (win[:, c, t] + win[:, c, t+1])
 *
 * So prefill of N tokens followed by k single steps gives the same last-position logits as one
 * prefill of N+k tokens, exactly like the real model. Logit columns ≥ realVocabSize get +50 so
 * that padded-row masking is visible.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ONNX_DTYPE } from '../../src/onnx/dtype.js';
import { encodeModel, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/onnx/proto.js';
import type { Mamba2Config } from '../../src/package/config.js';
import { ioTable } from '../../src/package/io.js';
import { META_FILE, MODEL_FILE, type ModelMeta } from '../../src/package/meta.js';

interface Init {
  name: string;
  type: 'float32' | 'int64';
  dims: number[];
  values: number[];
}
interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: { name: string; i: number }[];
}

function tensor(t: Init): TensorProto {
  const raw =
    t.type === 'float32'
      ? new Uint8Array(Float32Array.from(t.values).buffer)
      : new Uint8Array(BigInt64Array.from(t.values.map((v) => BigInt(v))).buffer);
  return {
    dims: t.dims,
    dataType: ONNX_DTYPE[t.type],
    name: t.name,
    rawData: raw,
    externalData: [],
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    doubleData: [],
    uint64Data: [],
    metadataProps: [],
  };
}

function valueInfo(e: { name: string; dtype: string; shape: readonly unknown[] }): ValueInfoProto {
  const dim = e.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: String(d) }));
  return {
    name: e.name,
    type: { tensorType: { elemType: e.dtype === 'int64' ? ONNX_DTYPE.int64 : ONNX_DTYPE.float32, shape: { dim } } },
    metadataProps: [],
  };
}

function node(n: Node, idx: number): NodeProto {
  return {
    input: n.inputs,
    output: n.outputs,
    name: `/toy/${n.op}_${idx}`,
    opType: n.op,
    metadataProps: [],
    attribute: (n.attrs ?? []).map((a) => ({
      name: a.name,
      type: 2 /* INT */,
      i: a.i,
      floats: [],
      ints: [],
      strings: [],
      tensors: [],
      graphs: [],
    })),
  };
}

/** The config of the toy model (1 layer, V = 8 rows of which 6 are real tokens). */
export function toyConfig(): Mamba2Config {
  return {
    format: 'hf',
    dModel: 8,
    nLayer: 1,
    vocabSize: 8,
    realVocabSize: 6,
    dState: 8,
    dConv: 3,
    expand: 1,
    headDim: 1,
    nHeads: 1,
    nGroups: 1,
    chunkSize: 4,
    dInner: 1,
    dSsm: 1,
    dMlp: 0,
    convDim: 2,
    dInProj: 0,
    dtLimit: [0, Infinity],
    dHasHdim: false,
    rmsNorm: true,
    normBeforeGate: false,
    bias: false,
    convBias: true,
    tieEmbeddings: false,
    normEps: 1e-5,
    residualInFp32: true,
    eosTokenId: 5,
  };
}

/** ONNX bytes of the toy model. `seed` changes the embedding table. */
export function toyModelBytes(seed = 1): Uint8Array {
  const c = toyConfig();
  const V = c.vocabSize;
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const emb: number[] = [];
  for (let r = 0; r < V; r++) for (let col = 0; col < V; col++) emb.push(col >= c.realVocabSize ? 50 : rnd() * 2 - 1);
  const inits: Init[] = [
    { name: 'E', type: 'float32', dims: [V, V], values: emb },
    { name: 'axis1', type: 'int64', dims: [], values: [1] },
    { name: 'axes1', type: 'int64', dims: [1], values: [1] },
    { name: 'axes2', type: 'int64', dims: [1], values: [2] },
    { name: 'shape_b1v', type: 'int64', dims: [3], values: [0, 1, V] },
    { name: 'shape_b11v', type: 'int64', dims: [4], values: [0, 1, 1, V] },
    { name: 'start0', type: 'int64', dims: [1], values: [0] },
    { name: 'start1', type: 'int64', dims: [1], values: [1] },
    { name: 'startm2', type: 'int64', dims: [1], values: [-2] },
    { name: 'endm2', type: 'int64', dims: [1], values: [-2] },
    { name: 'endm1', type: 'int64', dims: [1], values: [-1] },
    { name: 'endmax', type: 'int64', dims: [1], values: [2 ** 53 - 1] },
    { name: 'scale', type: 'float32', dims: [], values: [0.01] },
  ];
  const nodes: Node[] = [
    { op: 'Gather', inputs: ['E', 'input_ids'], outputs: ['emb'] },
    { op: 'CumSum', inputs: ['emb', 'axis1'], outputs: ['cs'] },
    { op: 'Reshape', inputs: ['past_ssm.0', 'shape_b1v'], outputs: ['s0'] },
    { op: 'Add', inputs: ['cs', 's0'], outputs: ['l0'] },
    { op: 'ReduceSum', inputs: ['emb', 'axes1'], outputs: ['esum'], attrs: [{ name: 'keepdims', i: 1 }] },
    { op: 'Add', inputs: ['s0', 'esum'], outputs: ['s1'] },
    { op: 'Reshape', inputs: ['s1', 'shape_b11v'], outputs: ['present_ssm.0'] },
    { op: 'Cast', inputs: ['input_ids'], outputs: ['idsf'], attrs: [{ name: 'to', i: ONNX_DTYPE.float32 }] },
    { op: 'Unsqueeze', inputs: ['idsf', 'axes1'], outputs: ['idsu'] },
    { op: 'Concat', inputs: ['idsu', 'idsu'], outputs: ['ids2'], attrs: [{ name: 'axis', i: 1 }] }, // one row per conv channel
    { op: 'Concat', inputs: ['past_conv.0', 'ids2'], outputs: ['win'], attrs: [{ name: 'axis', i: 2 }] },
    { op: 'Slice', inputs: ['win', 'startm2', 'endmax', 'axes2'], outputs: ['present_conv.0'] },
    { op: 'Slice', inputs: ['win', 'start0', 'endm2', 'axes2'], outputs: ['wa'] },
    { op: 'Slice', inputs: ['win', 'start1', 'endm1', 'axes2'], outputs: ['wb'] },
    { op: 'Add', inputs: ['wa', 'wb'], outputs: ['wsum'] },
    { op: 'ReduceSum', inputs: ['wsum', 'axes1'], outputs: ['prev'], attrs: [{ name: 'keepdims', i: 0 }] },
    { op: 'Unsqueeze', inputs: ['prev', 'axes2'], outputs: ['prevu'] },
    { op: 'Mul', inputs: ['prevu', 'scale'], outputs: ['prevs'] },
    { op: 'Add', inputs: ['l0', 'prevs'], outputs: ['logits'] },
  ];
  const io = ioTable(c);
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mamba2-onnx toy',
    metadataProps: [],
    functions: [],
    graph: {
      name: 'toy',
      node: nodes.map(node),
      initializer: inits.map(tensor),
      input: io.inputs.map((e) => valueInfo(e)),
      output: io.outputs.map((e) => valueInfo(e)),
      valueInfo: [],
      metadataProps: [],
    },
  });
}

/** The ModelMeta the exporter would write for the toy model. */
export function toyMeta(): ModelMeta {
  const config = toyConfig();
  return {
    format: 'mamba2-onnx',
    formatVersion: 1,
    source: 'toy',
    config,
    io: ioTable(config),
    ssdForm: 'chunked',
    weightDType: 'fp32',
    singleStep: 'if',
    files: { model: MODEL_FILE },
    opsets: { '': 17 },
    exporterVersion: 'toy',
  };
}

/** Write model.onnx + mamba2-onnx.json (+ optional tokenizer files) into `dir`. */
export function writeToyModelDir(dir: string, opts: { seed?: number; tokenizer?: { json: object; config?: object } } = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, MODEL_FILE), toyModelBytes(opts.seed));
  const meta = toyMeta();
  if (opts.tokenizer) {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(opts.tokenizer.json));
    const files = ['tokenizer.json'];
    if (opts.tokenizer.config) {
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(opts.tokenizer.config));
      files.push('tokenizer_config.json');
    }
    meta.files.tokenizer = files;
  }
  // JSON.stringify turns Infinity into null; the exporter's writer decides the real encoding.
  writeFileSync(join(dir, META_FILE), JSON.stringify(meta, null, 2));
}
