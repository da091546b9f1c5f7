/**
 * A tiny recurrent ONNX model with the exact Mamba-2 I/O contract (src/export/io.ts), for testing
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
 * that padded-row masking is visible. Serialised with protobufjs' Writer (test helper only).
 */
import protobuf from 'protobufjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mamba2Config } from '../../export/config-types.js';
import { ioTable } from '../../export/io.js';
import { META_FILE, MODEL_FILE, type ModelMeta } from '../../export/model-meta.js';

type W = protobuf.Writer;
const LEN = 2;
const VARINT = 0;
const FLOAT = 1;
const INT64 = 7;

function field(w: W, no: number, wire: number): W {
  return w.uint32((no << 3) | wire);
}
function str(w: W, no: number, s: string): void {
  field(w, no, LEN).string(s);
}
function msg(w: W, no: number, body: (w: W) => void): void {
  field(w, no, LEN).fork();
  body(w);
  w.ldelim();
}

interface Init {
  name: string;
  type: 'float32' | 'int64';
  dims: number[];
  values: number[];
}
interface Attr {
  name: string;
  i: number;
}
interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
}
interface IO {
  name: string;
  type: 'float32' | 'int64';
  dims: (number | string)[];
}

function tensor(w: W, t: Init): void {
  for (const d of t.dims) field(w, 1, VARINT).int64(d);
  field(w, 2, VARINT).int32(t.type === 'float32' ? FLOAT : INT64);
  str(w, 8, t.name);
  const bytes =
    t.type === 'float32'
      ? new Uint8Array(Float32Array.from(t.values).buffer)
      : new Uint8Array(BigInt64Array.from(t.values.map((v) => BigInt(v))).buffer);
  field(w, 9, LEN).bytes(bytes);
}

function valueInfo(w: W, v: IO): void {
  str(w, 1, v.name);
  msg(w, 2, (w) =>
    msg(w, 1, (w) => {
      field(w, 1, VARINT).int32(v.type === 'float32' ? FLOAT : INT64);
      msg(w, 2, (w) => {
        for (const d of v.dims) msg(w, 1, (w) => (typeof d === 'number' ? field(w, 1, VARINT).int64(d) : str(w, 2, d)));
      });
    }),
  );
}

function node(w: W, n: Node, idx: number): void {
  for (const i of n.inputs) str(w, 1, i);
  for (const o of n.outputs) str(w, 2, o);
  str(w, 3, `/toy/${n.op}_${idx}`);
  str(w, 4, n.op);
  for (const a of n.attrs ?? []) {
    msg(w, 5, (w) => {
      str(w, 1, a.name);
      field(w, 3, VARINT).int64(a.i);
      field(w, 20, VARINT).int32(2); // AttributeProto.INT
    });
  }
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
    { op: 'Cast', inputs: ['input_ids'], outputs: ['idsf'], attrs: [{ name: 'to', i: FLOAT }] },
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
  const toIO = (e: { name: string; dtype: string; shape: readonly (number | string)[] }): IO => ({
    name: e.name,
    type: e.dtype === 'int64' ? 'int64' : 'float32',
    dims: [...e.shape],
  });
  const w = protobuf.Writer.create();
  field(w, 1, VARINT).int64(8); // ir_version
  str(w, 2, 'mamba2-onnx toy');
  msg(w, 7, (w) => {
    nodes.forEach((n, i) => msg(w, 1, (w) => node(w, n, i)));
    str(w, 2, 'toy');
    for (const t of inits) msg(w, 5, (w) => tensor(w, t));
    for (const v of io.inputs) msg(w, 11, (w) => valueInfo(w, toIO(v)));
    for (const v of io.outputs) msg(w, 12, (w) => valueInfo(w, toIO(v)));
  });
  msg(w, 8, (w) => {
    str(w, 1, '');
    field(w, 2, VARINT).int64(17);
  });
  return w.finish();
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
