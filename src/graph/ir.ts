/**
 * The in-memory model: what the builder produces and what `serialize.ts` turns into ONNX bytes.
 * Plain data, no protobuf types: the protobuf schema stays behind `proto.ts` alone.
 *
 * Values are referred to by name here (that is what ONNX stores); the builder's `Value` handles
 * (value.ts) are the objects graph code works with.
 */
import type { DType } from '../onnx/dtype.js';
import type { Shape } from './shape.js';

/** Bytes of one tensor, produced on demand so that a large export never holds every weight. */
export interface TensorData {
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Number of bytes `bytes()` returns (known before loading; used to plan external data). */
  readonly byteLength: number;
  /** Little-endian raw data in ONNX layout (int4: two per byte, low nibble first). */
  bytes(): Uint8Array | Promise<Uint8Array>;
}

export interface InitializerIR {
  name: string;
  data: TensorData;
}

export interface ValueInfoIR {
  name: string;
  dtype: DType;
  shape: Shape;
  docString?: string;
}

export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: TensorData }
  | { type: 'graph'; value: GraphIR }
  /** Inside a function body: take the value of the calling node's attribute `refName`. */
  | { type: 'ref'; refName: string; refType: 'float' | 'int' | 'string' | 'floats' | 'ints' | 'strings' };

export interface NodeIR {
  name: string;
  opType: string;
  domain: string; // '' = ai.onnx
  inputs: string[]; // '' = omitted optional input
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

export interface GraphIR {
  name: string;
  inputs: ValueInfoIR[];
  outputs: ValueInfoIR[];
  initializers: InitializerIR[];
  nodes: NodeIR[];
  /** Shapes of intermediate values, as the builder inferred them (written as value_info). */
  valueInfo: ValueInfoIR[];
}

export interface FunctionIR {
  name: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** Attribute names the body may reference. */
  attributes: string[];
  nodes: NodeIR[];
  opsetImports: Record<string, number>;
  docString?: string;
}

export interface ModelIR {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** domain → version; '' is the default ai.onnx domain. */
  opsetImports: Record<string, number>;
  graph: GraphIR;
  functions: FunctionIR[];
  metadata: Record<string, string>;
  docString?: string;
}
