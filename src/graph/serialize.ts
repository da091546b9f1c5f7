/**
 * ModelIR → `model.onnx` (+ `model.onnx.data`). The protobuf schema stays behind proto.ts.
 *
 * Initializers of the main graph are streamed: each one's bytes are loaded, written to the data file
 * (or kept inline when small) and dropped before the next, so an export never holds every weight.
 * External tensors start at offsets aligned to 4096 bytes (the page size), as onnx.proto recommends
 * so that a runtime can memory-map them; the gaps are zero bytes. Tensors nested in subgraphs and
 * tensor attributes (Constant `value`) always stay inline and must be small (NESTED_TENSOR_LIMIT).
 *
 * Output is deterministic: the same ModelIR gives byte-identical files (no timestamps; metadata sorted
 * by key, opset imports by domain, node attributes by name). Each file is written under a temporary
 * name and renamed, so a crash never leaves a half-written file under the final name.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ONNX_DTYPE, byteSize, type DType } from '../onnx/dtype.js';
import type { AttributeValue, FunctionIR, GraphIR, ModelIR, NodeIR, TensorData, ValueInfoIR } from './ir.js';
import {
  ATTR_TYPE,
  DATA_LOCATION,
  encodeModel,
  type AttributeProto,
  type DimensionProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto.js';

/** Offsets of external tensors are multiples of this (page size, for mmap). */
export const EXTERNAL_ALIGNMENT = 4096;
/** `externalData: 'auto'` goes external when the main graph's initializers exceed this many bytes. */
const AUTO_EXTERNAL_ABOVE = 64 * 1024 * 1024;
/** Protobuf's hard limit for one message: ONNX Runtime refuses a larger model.onnx. */
const PROTO_LIMIT = 2 ** 31 - 1;
/** Largest tensor allowed inline in a subgraph or attribute (make bigger ones main-graph initializers). */
const NESTED_TENSOR_LIMIT = 4 * 1024 * 1024;
const DEFAULT_THRESHOLD = 1024;
const WRITE_CHUNK = 1 << 30;

export interface SaveOptions {
  /** File name of the model inside `dir`. Default 'model.onnx'. */
  modelFile?: string;
  /** File name of the external data inside `dir`. Default `${modelFile}.data`. */
  dataFile?: string;
  /** 'auto': external when initializers total over 64 MiB; 'never' refuses past 2 GiB. */
  externalData: 'auto' | 'always' | 'never';
  /** Tensors of at least this many bytes go external (when external data is used). Default 1024. */
  externalThreshold?: number;
  /** Called after each main-graph initializer is written. */
  onTensor?: (done: number, total: number, name: string) => void;
}

export interface SaveResult {
  /** Paths written (model file first), joined onto `dir`. */
  files: string[];
  /** Size of the external data file in bytes, alignment padding included (0 when none). */
  externalBytes: number;
}

/** Writes `model` into `dir` as ONNX. `dir` must exist. */
export async function saveModel(model: ModelIR, dir: string, opts: SaveOptions): Promise<SaveResult> {
  const modelFile = opts.modelFile ?? 'model.onnx';
  const dataFile = opts.dataFile ?? `${modelFile}.data`;
  const threshold = opts.externalThreshold ?? DEFAULT_THRESHOLD;
  checkFileName('modelFile', modelFile);
  checkFileName('dataFile', dataFile);
  if (modelFile === dataFile) throw new RangeError(`saveModel: dataFile must differ from modelFile, got '${dataFile}' for both`);
  if (!['auto', 'always', 'never'].includes(opts.externalData)) {
    throw new RangeError(`saveModel: externalData expected 'auto' | 'always' | 'never', got '${String(opts.externalData)}'`);
  }
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw new RangeError(`saveModel: externalThreshold expected a non-negative integer, got ${threshold}`);
  }

  // Plan before loading anything: which tensors go external, and will the protobuf fit?
  const inits = model.graph.initializers;
  const total = inits.reduce((s, t) => s + t.data.byteLength, 0);
  const useExternal = opts.externalData === 'always' || (opts.externalData === 'auto' && total > AUTO_EXTERNAL_ABOVE);
  const external = inits.map((t) => useExternal && t.data.byteLength >= threshold);
  const inlineBytes = nestedTensorBytes(model) + inits.reduce((s, t, i) => s + (external[i] ? 0 : t.data.byteLength), 0);
  if (inlineBytes > PROTO_LIMIT) throw tooLarge(modelFile, inlineBytes, opts.externalData);

  // Everything but the main initializers first, so that a bad node fails before any large write.
  const initProtos: TensorProto[] = [];
  const proto: ModelProto = {
    irVersion: checkInt('irVersion', model.irVersion),
    opsetImport: opsetImports(model.opsetImports, 'model'),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: model.docString,
    graph: await graphProto(model.graph, false, initProtos),
    metadataProps: Object.keys(model.metadata)
      .sort(byCodeUnit)
      .map((key) => ({ key, value: model.metadata[key] })),
    functions: await Promise.all(model.functions.map(functionProto)),
  };

  let externalBytes = 0;
  const files: string[] = [];
  if (external.some(Boolean)) {
    const dataPath = join(dir, dataFile);
    externalBytes = await writeAtomically(dataPath, async (w) => {
      for (const [i, init] of inits.entries()) {
        const bytes = await tensorBytes(init.data, `initializer '${init.name}'`);
        if (external[i]) {
          await w.write(new Uint8Array(alignUp(w.pos) - w.pos));
          const entries = [
            { key: 'location', value: dataFile },
            { key: 'offset', value: String(w.pos) },
            { key: 'length', value: String(bytes.length) },
          ];
          await w.write(bytes);
          initProtos.push({ ...tensorHeader(init.name, init.data), externalData: entries, dataLocation: DATA_LOCATION.EXTERNAL });
        } else {
          initProtos.push({ ...tensorHeader(init.name, init.data), rawData: bytes });
        }
        opts.onTensor?.(i + 1, inits.length, init.name);
      }
    });
    files.push(dataPath);
  } else {
    for (const [i, init] of inits.entries()) {
      const bytes = await tensorBytes(init.data, `initializer '${init.name}'`);
      initProtos.push({ ...tensorHeader(init.name, init.data), rawData: bytes });
      opts.onTensor?.(i + 1, inits.length, init.name);
    }
  }

  const bytes = encodeModel(proto);
  if (bytes.length > PROTO_LIMIT) throw tooLarge(modelFile, bytes.length, opts.externalData);
  const modelPath = join(dir, modelFile);
  await writeAtomically(modelPath, (w) => w.write(bytes));
  return { files: [modelPath, ...files], externalBytes };
}

// ---- IR → proto objects -----------------------------------------------------------------------

const EMPTY_TENSOR = {
  externalData: [],
  floatData: [],
  int32Data: [],
  stringData: [],
  int64Data: [],
  doubleData: [],
  uint64Data: [],
  metadataProps: [],
};
const EMPTY_ATTR = { floats: [], ints: [], strings: [], tensors: [], graphs: [] };

function tensorHeader(name: string | undefined, data: TensorData): TensorProto {
  return {
    ...EMPTY_TENSOR,
    name,
    dims: data.dims.map((d, i) => checkInt(`${name ?? 'tensor'}.dims[${i}]`, d)),
    dataType: dtypeCode(data.dtype, name ?? 'tensor'),
  };
}

async function inlineTensor(name: string | undefined, data: TensorData, where: string): Promise<TensorProto> {
  if (data.byteLength > NESTED_TENSOR_LIMIT) {
    throw new RangeError(
      `saveModel: ${where} holds ${data.byteLength} bytes; tensors in subgraphs and attributes are written inline ` +
        `and are limited to ${NESTED_TENSOR_LIMIT} bytes: make it an initializer of the main graph`,
    );
  }
  return { ...tensorHeader(name, data), rawData: await tensorBytes(data, where) };
}

async function graphProto(g: GraphIR, inFunction: boolean, initializer?: TensorProto[]): Promise<GraphProto> {
  const where = `graph '${g.name}'`;
  return {
    name: g.name,
    node: await nodeProtos(g.nodes, inFunction, where),
    initializer:
      initializer ?? (await Promise.all(g.initializers.map((t) => inlineTensor(t.name, t.data, `${where} initializer '${t.name}'`)))),
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
    valueInfo: g.valueInfo.map(valueInfo),
    metadataProps: [],
  };
}

async function functionProto(f: FunctionIR): Promise<FunctionProto> {
  return {
    name: f.name,
    domain: f.domain,
    input: [...f.inputs],
    output: [...f.outputs],
    attribute: [...f.attributes],
    attributeProto: [],
    node: await nodeProtos(f.nodes, true, `function '${f.domain}::${f.name}'`),
    docString: f.docString,
    opsetImport: opsetImports(f.opsetImports, `function '${f.name}'`),
    valueInfo: [],
    metadataProps: [],
  };
}

async function nodeProtos(nodes: readonly NodeIR[], inFunction: boolean, where: string): Promise<NodeProto[]> {
  const out: NodeProto[] = [];
  for (const n of nodes) {
    const names = Object.keys(n.attributes).sort(byCodeUnit);
    const attribute: AttributeProto[] = [];
    for (const a of names)
      attribute.push(await attributeProto(a, n.attributes[a]!, inFunction, `${where} node '${n.name}' attribute '${a}'`));
    out.push({
      input: [...n.inputs],
      output: [...n.outputs],
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      attribute,
      metadataProps: [],
    });
  }
  return out;
}

async function attributeProto(name: string, a: AttributeValue, inFunction: boolean, where: string): Promise<AttributeProto> {
  const base = { ...EMPTY_ATTR, name };
  switch (a.type) {
    case 'float':
      return { ...base, type: ATTR_TYPE.FLOAT, f: checkFloat(where, a.value) };
    case 'int':
      return { ...base, type: ATTR_TYPE.INT, i: checkInt(where, a.value) };
    case 'string':
      return { ...base, type: ATTR_TYPE.STRING, s: utf8(a.value) };
    case 'floats':
      return { ...base, type: ATTR_TYPE.FLOATS, floats: a.value.map((v) => checkFloat(where, v)) };
    case 'ints':
      return { ...base, type: ATTR_TYPE.INTS, ints: a.value.map((v) => checkInt(where, v)) };
    case 'strings':
      return { ...base, type: ATTR_TYPE.STRINGS, strings: a.value.map(utf8) };
    case 'tensor':
      return { ...base, type: ATTR_TYPE.TENSOR, t: await inlineTensor(undefined, a.value, where) };
    case 'graph':
      return { ...base, type: ATTR_TYPE.GRAPH, g: await graphProto(a.value, inFunction) };
    case 'ref': {
      if (!inFunction)
        throw new TypeError(`saveModel: ${where} references '${a.refName}', but references are only allowed inside function bodies`);
      return { ...base, type: ATTR_TYPE[refTypeKey[a.refType]], refAttrName: a.refName };
    }
  }
}

const refTypeKey = { float: 'FLOAT', int: 'INT', string: 'STRING', floats: 'FLOATS', ints: 'INTS', strings: 'STRINGS' } as const;

function valueInfo(v: ValueInfoIR): ValueInfoProto {
  const shape = Array.isArray(v.shape) ? { dim: (v.shape as readonly unknown[]).map(dimProto) } : undefined;
  return {
    name: v.name,
    type: { tensorType: { elemType: dtypeCode(v.dtype, `value '${v.name}'`), shape } },
    docString: v.docString,
    metadataProps: [],
  };
}

/** number → dim_value, string → dim_param, anything else → an unknown dim. */
function dimProto(d: unknown): DimensionProto {
  if (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0) return { dimValue: d };
  if (typeof d === 'string' && d !== '') return { dimParam: d };
  return {};
}

function opsetImports(imports: Record<string, number>, where: string): OperatorSetIdProto[] {
  return Object.keys(imports)
    .sort(byCodeUnit)
    .map((domain) => ({ domain, version: checkInt(`${where} opset '${domain}'`, imports[domain]!) }));
}

// ---- checks and helpers -------------------------------------------------------------------------

async function tensorBytes(data: TensorData, where: string): Promise<Uint8Array> {
  const count = data.dims.reduce((p, d) => p * d, 1);
  const expected = byteSize(data.dtype, count);
  if (data.byteLength !== expected) {
    throw new RangeError(
      `saveModel: ${where}: byteLength ${data.byteLength} does not match ${data.dtype}[${data.dims.join(',')}] = ${expected} bytes`,
    );
  }
  const bytes = await data.bytes();
  if (bytes.length !== expected) throw new RangeError(`saveModel: ${where}: bytes() returned ${bytes.length} bytes, expected ${expected}`);
  return bytes;
}

/** Bytes of every tensor that is always inline (subgraph initializers, tensor attributes). */
function nestedTensorBytes(model: ModelIR): number {
  let sum = 0;
  const nodes = (ns: readonly NodeIR[]): void => {
    for (const n of ns) {
      for (const a of Object.values(n.attributes)) {
        if (a.type === 'tensor') sum += a.value.byteLength;
        if (a.type === 'graph') graph(a.value);
      }
    }
  };
  const graph = (g: GraphIR): void => {
    for (const t of g.initializers) sum += t.data.byteLength;
    nodes(g.nodes);
  };
  nodes(model.graph.nodes);
  for (const f of model.functions) nodes(f.nodes);
  return sum;
}

function dtypeCode(dtype: DType, where: string): number {
  const code = ONNX_DTYPE[dtype];
  if (code === undefined)
    throw new TypeError(`saveModel: ${where}: unknown dtype '${String(dtype)}', expected one of ${Object.keys(ONNX_DTYPE).join(', ')}`);
  return code;
}

function checkInt(where: string, v: number): number {
  if (!Number.isSafeInteger(v)) throw new RangeError(`saveModel: ${where} expected a safe integer, got ${v}`);
  return v;
}

function checkFloat(where: string, v: number): number {
  if (typeof v !== 'number') throw new TypeError(`saveModel: ${where} expected a number, got ${typeof v}`);
  return v;
}

function checkFileName(arg: string, name: string): void {
  if (name === '' || /[/\\]/.test(name) || name === '.' || name === '..') {
    throw new RangeError(`saveModel: ${arg} expected a plain file name (no directories), got '${name}'`);
  }
}

function tooLarge(modelFile: string, bytes: number, mode: string): RangeError {
  return new RangeError(
    `saveModel: ${modelFile} would be ${bytes} bytes with externalData '${mode}', over the 2 GiB protobuf limit ` +
      `(${PROTO_LIMIT}); use externalData 'auto' or 'always' (or a lower externalThreshold) to move tensors to a data file`,
  );
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const alignUp = (n: number): number => Math.ceil(n / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;

interface SeqWriter {
  pos: number;
  write(bytes: Uint8Array): Promise<void>;
}

/** Writes `path` through `path.partial-<pid>` and renames it; returns the bytes written. */
async function writeAtomically(path: string, body: (w: SeqWriter) => Promise<void>): Promise<number> {
  const tmp = `${path}.partial-${process.pid}`;
  const fh = await open(tmp, 'w');
  const w: SeqWriter = {
    pos: 0,
    async write(bytes) {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, done, Math.min(WRITE_CHUNK, bytes.length - done), w.pos);
        done += bytesWritten;
        w.pos += bytesWritten;
      }
    },
  };
  try {
    await body(w);
    await fh.datasync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await rename(tmp, path);
  return w.pos;
}
