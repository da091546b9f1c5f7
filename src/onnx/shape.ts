/**
 * A tensor dimension as ONNX's TensorShapeProto holds it: a number (`dim_value`) or a symbol
 * (`dim_param`, e.g. `batch`, `sequence+3`). The graph builder's shape algebra (graph/shape.ts)
 * works on these; the package contract (package/io.ts) and the runtime only carry them.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];
