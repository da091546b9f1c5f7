/**
 * Reads an ONNX file into a summary (for `mamba2-onnx inspect` and tests) without loading external
 * data: data files are only stat'ed, to check that each exists and covers every offset + length.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, normalize, resolve, sep } from 'node:path';
import { DTYPE_FROM_ONNX } from '../onnx/dtype.js';
import {
  DATA_LOCATION,
  decodeModel,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto.js';

export interface TensorInfoSummary {
  name: string;
  /** DType name, or `onnx:<code>` for an element type this project does not use, or 'non-tensor'. */
  dtype: string;
  /** number = dim_value, string = dim_param, null = unknown dim; null for an unknown rank. */
  dims: (number | string | null)[] | null;
}

export interface ExternalFileSummary {
  /** `location` as written in the model. */
  location: string;
  /** Resolved path. */
  path: string;
  tensors: number;
  /** Bytes the tensors reference (sum of lengths). */
  bytes: number;
  /** Size of the file on disk. */
  fileSize: number;
}

export interface FunctionSummary {
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: string[];
  nodes: number;
}

export interface ModelSummary {
  path: string;
  fileBytes: number;
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** domain → version; '' is ai.onnx. */
  opsetImports: Record<string, number>;
  metadata: Record<string, string>;
  inputs: TensorInfoSummary[];
  outputs: TensorInfoSummary[];
  /** `domain::opType` → count over the main graph and its subgraphs (If/Loop/Scan); '' shows as 'ai.onnx'. */
  opCounts: Record<string, number>;
  /** `domain::name` of each model-local function → op counts of its body (and subgraphs). */
  functionOpCounts: Record<string, Record<string, number>>;
  /** Initializers of the main graph and its subgraphs. */
  initializers: { count: number; parameters: number; bytes: number; inlineBytes: number; externalBytes: number };
  externalData: ExternalFileSummary[];
  functions: FunctionSummary[];
}

/** Bits per element by ONNX `TensorProto.DataType` code (STRING excluded). */
const ONNX_BITS: ReadonlyMap<number, number> = new Map([
  [1, 32],
  [2, 8],
  [3, 8],
  [4, 16],
  [5, 16],
  [6, 32],
  [7, 64],
  [9, 8],
  [10, 16],
  [11, 64],
  [12, 32],
  [13, 64],
  [14, 64],
  [15, 128],
  [16, 16],
  [17, 8],
  [18, 8],
  [19, 8],
  [20, 8],
  [21, 4],
  [22, 4],
  [23, 4],
]);
const PROTO_LIMIT = 2 ** 31 - 1;

interface ExternalRef {
  tensor: string;
  location: string;
  offset: number;
  length: number;
}

export async function loadModelSummary(path: string): Promise<ModelSummary> {
  const fileBytes = await statOrThrow(path, `loadModelSummary: model file '${path}'`);
  if (fileBytes > PROTO_LIMIT) {
    throw new RangeError(`loadModelSummary: '${path}' is ${fileBytes} bytes, over the 2 GiB protobuf limit; not a valid ONNX model file`);
  }
  let model: ModelProto;
  try {
    model = decodeModel(await readFile(path));
  } catch (e) {
    throw new Error(`loadModelSummary: '${path}': ${(e as Error).message}`);
  }
  const graph = model.graph;
  if (graph === undefined) throw new Error(`loadModelSummary: '${path}' has no graph`);

  const init = { count: 0, parameters: 0, bytes: 0, inlineBytes: 0, externalBytes: 0 };
  const refs: ExternalRef[] = [];
  const opCounts: Record<string, number> = {};
  walkGraph(graph, opCounts, (t, isInit) => {
    const info = tensorBytes(t);
    if (t.dataLocation === DATA_LOCATION.EXTERNAL) refs.push(externalRef(t, info.expected));
    if (!isInit) return;
    init.count++;
    init.parameters += info.elements;
    init.bytes += info.bytes;
    if (t.dataLocation === DATA_LOCATION.EXTERNAL) init.externalBytes += info.bytes;
    else init.inlineBytes += info.bytes;
  });

  const functionOpCounts: Record<string, Record<string, number>> = {};
  for (const f of model.functions) {
    const counts: Record<string, number> = {};
    walkNodes(f.node, counts, (t) => {
      if (t.dataLocation === DATA_LOCATION.EXTERNAL) refs.push(externalRef(t, tensorBytes(t).expected));
    });
    functionOpCounts[`${f.domain ?? ''}::${f.name ?? ''}`] = counts;
  }

  return {
    path,
    fileBytes,
    irVersion: model.irVersion ?? 0,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    opsetImports: Object.fromEntries(model.opsetImport.map((o) => [o.domain ?? '', o.version ?? 0])),
    metadata: Object.fromEntries(model.metadataProps.map((e) => [e.key ?? '', e.value ?? ''])),
    inputs: graph.input.map(tensorInfo),
    outputs: graph.output.map(tensorInfo),
    opCounts,
    functionOpCounts,
    initializers: init,
    externalData: await checkExternal(path, refs),
    functions: model.functions.map((f) => ({
      domain: f.domain ?? '',
      name: f.name ?? '',
      inputs: f.input,
      outputs: f.output,
      attributes: [...f.attribute, ...f.attributeProto.map((a) => a.name ?? '')],
      nodes: f.node.length,
    })),
  };
}

type TensorVisitor = (t: TensorProto, isInitializer: boolean) => void;

function walkGraph(g: GraphProto, counts: Record<string, number>, visit: TensorVisitor): void {
  for (const t of g.initializer) visit(t, true);
  walkNodes(g.node, counts, visit);
}

function walkNodes(nodes: readonly NodeProto[], counts: Record<string, number>, visit: TensorVisitor): void {
  for (const n of nodes) {
    const key = `${n.domain === undefined || n.domain === '' ? 'ai.onnx' : n.domain}::${n.opType ?? ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
    for (const a of n.attribute) walkAttribute(a, counts, visit);
  }
}

function walkAttribute(a: AttributeProto, counts: Record<string, number>, visit: TensorVisitor): void {
  if (a.t !== undefined) visit(a.t, false);
  for (const t of a.tensors) visit(t, false);
  if (a.g !== undefined) walkGraph(a.g, counts, visit);
  for (const g of a.graphs) walkGraph(g, counts, visit);
}

function tensorInfo(v: ValueInfoProto): TensorInfoSummary {
  const tt = v.type?.tensorType;
  if (tt === undefined) return { name: v.name ?? '', dtype: 'non-tensor', dims: null };
  const dims = tt.shape === undefined ? null : tt.shape.dim.map((d) => d.dimValue ?? d.dimParam ?? null);
  return { name: v.name ?? '', dtype: dtypeName(tt.elemType ?? 0), dims };
}

const dtypeName = (code: number): string => DTYPE_FROM_ONNX.get(code) ?? `onnx:${code}`;

/** Elements, stored bytes, and the bytes its dtype and dims call for (undefined if not fixed-width). */
function tensorBytes(t: TensorProto): { elements: number; bytes: number; expected: number | undefined } {
  const elements = t.dims.reduce((p, d) => p * d, 1);
  const bits = ONNX_BITS.get(t.dataType ?? 0);
  const expected = bits === undefined ? undefined : Math.ceil((elements * bits) / 8);
  let bytes: number;
  if (t.dataLocation === DATA_LOCATION.EXTERNAL) bytes = Number(entry(t, 'length') ?? expected ?? 0);
  else if (t.rawData !== undefined) bytes = t.rawData.length;
  else if (t.stringData.length > 0) bytes = t.stringData.reduce((s, b) => s + b.length, 0);
  else bytes = expected ?? 0;
  return { elements, bytes, expected };
}

const entry = (t: TensorProto, key: string): string | undefined => t.externalData.find((e) => e.key === key)?.value;

function externalRef(t: TensorProto, expected: number | undefined): ExternalRef {
  const name = t.name ?? '(unnamed tensor)';
  const location = entry(t, 'location');
  if (location === undefined || location === '') throw new Error(`loadModelSummary: tensor '${name}' is external but has no 'location'`);
  const offset = nonNegInt(entry(t, 'offset') ?? '0', `tensor '${name}' external offset`);
  const lengthStr = entry(t, 'length');
  if (lengthStr === undefined && expected === undefined) {
    throw new Error(`loadModelSummary: tensor '${name}' is external with no 'length' and no fixed-width dtype`);
  }
  const length = lengthStr === undefined ? expected! : nonNegInt(lengthStr, `tensor '${name}' external length`);
  if (expected !== undefined && length !== expected) {
    throw new RangeError(
      `loadModelSummary: tensor '${name}' external length is ${length} bytes, expected ${expected} for its dtype and dims`,
    );
  }
  return { tensor: name, location, offset, length };
}

function nonNegInt(s: string, what: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n))
    throw new RangeError(`loadModelSummary: ${what} expected a non-negative integer, got '${s}'`);
  return n;
}

async function checkExternal(modelPath: string, refs: readonly ExternalRef[]): Promise<ExternalFileSummary[]> {
  const dir = dirname(modelPath);
  const files = new Map<string, ExternalFileSummary>();
  for (const r of refs) {
    let f = files.get(r.location);
    if (f === undefined) {
      const norm = normalize(r.location);
      if (isAbsolute(r.location) || norm === '..' || norm.startsWith(`..${sep}`)) {
        throw new RangeError(
          `loadModelSummary: tensor '${r.tensor}' external location '${r.location}' must be a path inside the model's directory`,
        );
      }
      const path = resolve(dir, r.location);
      const fileSize = await statOrThrow(path, `loadModelSummary: external data file '${path}' (tensor '${r.tensor}')`);
      f = { location: r.location, path, tensors: 0, bytes: 0, fileSize };
      files.set(r.location, f);
    }
    if (r.offset + r.length > f.fileSize) {
      throw new RangeError(
        `loadModelSummary: external data file '${f.path}' is truncated: tensor '${r.tensor}' needs bytes ` +
          `${r.offset}..${r.offset + r.length}, the file has ${f.fileSize}`,
      );
    }
    f.tensors++;
    f.bytes += r.length;
  }
  return [...files.values()];
}

async function statOrThrow(path: string, what: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error(`${what} is not a file`);
    return s.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${what} is missing`);
    throw e;
  }
}
