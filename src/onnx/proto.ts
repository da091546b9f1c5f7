/**
 * The ONNX protobuf schema, owned by this project, and the only module that touches protobufjs.
 *
 * Decision: we keep our own proto2 text subset of ONNX's `onnx/onnx.proto` (IR version 10) and load
 * it with protobufjs 8 (`protobuf.parse(text)`) when this module loads; there is no code generation
 * step. Field numbers are copied from onnx.proto (checked against onnx/onnx `onnx/onnx.proto`, IR 10).
 * Why not a package:
 *  - `onnx-proto` is ONNX 1.10 on protobufjs 6: it drops newer fields such as
 *    `FunctionProto.attribute_proto`, and npm audit flags protobufjs 6;
 *  - `onnx-buf` would add `@bufbuild/protobuf` for this one job.
 * The subset: ModelProto, GraphProto, NodeProto, AttributeProto (with `ref_attr_name`), TensorProto
 * (with `external_data`, `data_location`, `raw_data` and the typed `*_data` fields), ValueInfoProto,
 * TypeProto.Tensor, TensorShapeProto (`dim_value` / `dim_param`), OperatorSetIdProto, FunctionProto
 * (with `attribute` and `attribute_proto`), StringStringEntryProto. Fields outside it (sparse
 * tensors, training info, sequence/map types, ...) are skipped when decoding.
 *
 * Like ONNX we use proto2, so an optional scalar is written whenever it is set, zero included: an
 * AttributeProto always carries its explicit `type` (a float attribute without it reads as INT and
 * ONNX Runtime rejects the model).
 *
 * Objects use protobufjs's camelCase field names (`op_type` → `opType`). int64 fields are plain
 * numbers in both directions; decoding refuses an int64 outside ±(2^53 − 1).
 */
import protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    TYPE_PROTO = 13; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
    SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
  repeated StringStringEntryProto metadata_props = 4;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  optional string overload = 8;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  repeated StringStringEntryProto metadata_props = 9;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated FunctionProto functions = 25;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated StringStringEntryProto metadata_props = 16;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  optional DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message FunctionProto {
  optional string name = 1;
  repeated string input = 4;
  repeated string output = 5;
  repeated string attribute = 6;
  repeated AttributeProto attribute_proto = 11;
  repeated NodeProto node = 7;
  optional string doc_string = 8;
  repeated OperatorSetIdProto opset_import = 9;
  optional string domain = 10;
  optional string overload = 13;
  repeated ValueInfoProto value_info = 12;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

/** `AttributeProto.AttributeType` codes. */
export const ATTR_TYPE = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

/** `TensorProto.DataLocation` codes. */
export const DATA_LOCATION = { DEFAULT: 0, EXTERNAL: 1 } as const;

export interface StringStringEntryProto {
  key?: string;
  value?: string;
}
export interface OperatorSetIdProto {
  domain?: string;
  version?: number;
}

/** Dimension: `dimValue` or `dimParam`, or neither for an unknown dim. */
export interface DimensionProto {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}
export interface TensorShapeProto {
  dim: DimensionProto[];
}
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: TensorShapeProto };
  denotation?: string;
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface TensorProto {
  dims: number[];
  dataType?: number;
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData: StringStringEntryProto[];
  dataLocation?: number;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: number[];
  doubleData: number[];
  uint64Data: number[];
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
}

export interface FunctionProto {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: AttributeProto[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
}

export interface ModelProto {
  irVersion?: number;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  functions: FunctionProto[];
}

const root = protobuf.parse(ONNX_PROTO).root;
const modelType = root.lookupType('onnx.ModelProto');
root.resolveAll();

/** Encodes a ModelProto object; a malformed object is refused with protobufjs's verify message. */
export function encodeModel(model: ModelProto): Uint8Array {
  const err = modelType.verify(model);
  if (err !== null) throw new TypeError(`encodeModel: invalid ModelProto: ${err}`);
  return modelType.encode(model).finish();
}

/** Decodes ONNX bytes. Repeated fields are always arrays; unset optional fields are absent. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let msg: protobuf.Message;
  try {
    msg = modelType.decode(bytes);
  } catch (e) {
    throw new Error(`decodeModel: not an ONNX ModelProto (${(e as Error).message})`);
  }
  return toPlain(modelType, msg, 'ModelProto') as unknown as ModelProto;
}

type Plain = { [k: string]: unknown };

/** Walks a decoded message by reflection: int64 → number (checked), nested messages → Plain. */
function toPlain(type: protobuf.Type, msg: object, where: string): Plain {
  const out: Plain = {};
  const src = msg as Plain;
  for (const field of type.fieldsArray) {
    const own = Object.hasOwn(src, field.name);
    const path = `${where}.${field.name}`;
    const conv = (v: unknown): unknown =>
      field.resolvedType instanceof protobuf.Type
        ? toPlain(field.resolvedType, v as object, path)
        : field.long
          ? int64ToNumber(v, path)
          : v;
    if (field.repeated) {
      out[field.name] = own ? (src[field.name] as unknown[]).map(conv) : [];
    } else if (own && src[field.name] !== null && src[field.name] !== undefined) {
      out[field.name] = conv(src[field.name]);
    }
  }
  return out;
}

interface LongLike {
  toNumber(): number;
}

function int64ToNumber(v: unknown, path: string): number {
  const n = typeof v === 'number' ? v : (v as LongLike).toNumber();
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`decodeModel: ${path} = ${String(v)} is beyond ±(2^53 − 1); this reader keeps int64 values as JS numbers`);
  }
  return n;
}
