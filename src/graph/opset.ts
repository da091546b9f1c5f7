/**
 * Which operators the builder may emit, and from which opset version of their domain.
 * `since` is the version whose semantics the typed wrappers in ops*.ts implement (e.g. Split-18
 * takes `num_outputs`, ReduceMean-18 takes axes as an input). A model whose imports do not cover
 * an op is refused when the node is added, not when ONNX Runtime loads the file.
 */

export const DEFAULT_DOMAIN = '';
export const MS_DOMAIN = 'com.microsoft';
/** The project's own domain for model-local functions such as SSDChunkScan. */
export const PROJECT_DOMAIN = 'ai.mamba2onnx';

export interface OpSchema {
  readonly domain: string;
  /** Lowest domain version the wrapper's semantics need. */
  readonly since: number;
  /** Highest domain version with the same semantics (a later opset changed the op). */
  readonly until?: number;
}

const onnx = (since: number, until?: number): OpSchema => ({ domain: DEFAULT_DOMAIN, since, until });
const ms = (since: number): OpSchema => ({ domain: MS_DOMAIN, since });

/** Default-domain and com.microsoft ops, keyed `domain::op` (default domain: just `op`). */
const OP_SCHEMAS: ReadonlyMap<string, OpSchema> = new Map<string, OpSchema>([
  ['Abs', onnx(13)],
  ['Add', onnx(14)],
  ['And', onnx(7)],
  ['Cast', onnx(21)],
  ['Clip', onnx(13)],
  ['Concat', onnx(13)],
  ['Constant', onnx(21)],
  ['ConstantOfShape', onnx(21)],
  ['Conv', onnx(11)],
  ['Cos', onnx(7)],
  ['CumSum', onnx(14)],
  ['Div', onnx(14)],
  ['Equal', onnx(19)],
  ['Exp', onnx(13)],
  ['Expand', onnx(13)],
  ['Gather', onnx(13)],
  ['GatherElements', onnx(13)],
  ['Gemm', onnx(13)],
  ['Greater', onnx(13)],
  ['GreaterOrEqual', onnx(16)],
  ['Identity', onnx(21)],
  ['If', onnx(21)],
  ['Less', onnx(13)],
  ['LessOrEqual', onnx(16)],
  ['Log', onnx(13)],
  ['Loop', onnx(21)],
  ['MatMul', onnx(13)],
  ['Max', onnx(13)],
  ['Min', onnx(13)],
  ['Mod', onnx(13)],
  ['Mul', onnx(14)],
  ['Neg', onnx(13)],
  ['Not', onnx(1)],
  ['Pad', onnx(21)],
  ['Pow', onnx(15)],
  ['Range', onnx(11)],
  ['Reciprocal', onnx(13)],
  ['ReduceMax', onnx(18)],
  ['ReduceMean', onnx(18)],
  ['ReduceSum', onnx(13)],
  ['RMSNormalization', onnx(23)],
  ['Relu', onnx(14)],
  ['Reshape', onnx(21)],
  ['Scan', onnx(21)],
  ['Shape', onnx(21)],
  ['Sigmoid', onnx(13)],
  ['Sin', onnx(7)],
  ['Size', onnx(21)],
  ['Slice', onnx(13)],
  ['Softmax', onnx(13)],
  ['Softplus', onnx(1)],
  ['Split', onnx(18)],
  ['Sqrt', onnx(13)],
  ['Squeeze', onnx(21)],
  ['Sub', onnx(14)],
  ['Tanh', onnx(13)],
  ['TopK', onnx(11)],
  ['Transpose', onnx(21)],
  ['Trilu', onnx(14)],
  ['Unsqueeze', onnx(21)],
  ['Where', onnx(16)],
  [`${MS_DOMAIN}::MatMulNBits`, ms(1)],
  [`${MS_DOMAIN}::LinearAttention`, ms(1)],
  [`${MS_DOMAIN}::CausalConvWithState`, ms(1)],
  [`${MS_DOMAIN}::GroupQueryAttention`, ms(1)],
  [`${MS_DOMAIN}::SkipSimplifiedLayerNormalization`, ms(1)],
]);

export const schemaKey = (domain: string, op: string): string => (domain === DEFAULT_DOMAIN ? op : `${domain}::${op}`);

/**
 * Opset imports the builder uses unless told otherwise. ORT 1.30 accepts up to 26. A graph may declare
 * ai.onnx 23 (RMSNormalization needs it): every op in the table keeps the semantics of its `since`
 * version through 23 (opsets 22 and 23 only widened type lists).
 */
export const DEFAULT_OPSETS: Readonly<Record<string, number>> = { [DEFAULT_DOMAIN]: 21 };

/** The ai.onnx opset of graphs with RMSNormalization (`export --rmsnorm fused`). */
export const RMS_NORMALIZATION_OPSET = 23;

/**
 * The IR version a model declares: the lowest that admits its ai.onnx opset (onnx.helper.VERSION_TABLE:
 * opset 21–22 → IR 10, 23 → IR 11, 24 → IR 12), so ONNX's checker and older runtimes accept it.
 */
export function irVersionFor(imports: Readonly<Record<string, number>>): number {
  const v = imports[DEFAULT_DOMAIN] ?? 0;
  return v >= 24 ? 12 : v >= 23 ? 11 : 10;
}

class OpsetError extends Error {
  constructor(node: string, detail: string) {
    super(`${node}: ${detail}`);
    this.name = 'OpsetError';
  }
}

/** Throws unless `op` of `domain` is known and covered by `imports`. */
export function checkOpset(
  imports: Readonly<Record<string, number>>,
  domain: string,
  op: string,
  node: string,
  extra?: ReadonlyMap<string, OpSchema>,
): void {
  const key = schemaKey(domain, op);
  const schema = OP_SCHEMAS.get(key) ?? extra?.get(key);
  if (!schema) throw new OpsetError(node, `operator '${key}' is not in the builder's operator table`);
  const have = imports[domain];
  const dname = domain === DEFAULT_DOMAIN ? 'ai.onnx' : domain;
  if (have === undefined) {
    throw new OpsetError(
      node,
      `operator '${key}' needs an opset import for domain '${dname}' (version ≥ ${schema.since}); the model imports ${JSON.stringify(imports)}`,
    );
  }
  if (have < schema.since || (schema.until !== undefined && have > schema.until)) {
    const range = schema.until !== undefined ? `${schema.since}..${schema.until}` : `≥ ${schema.since}`;
    throw new OpsetError(node, `operator '${key}' needs ${dname} opset ${range}, the model imports ${have}`);
  }
}
