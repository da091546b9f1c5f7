/**
 * GraphBuilder: builds a ModelIR from typed values.
 *
 *   const m = new ModelBuilder({ name: 'mamba2' });
 *   const g = m.graph;
 *   const x = g.input('x', 'float32', ['B', 'L', 64]);
 *   const y = g.scope('layers.0', () => op.Sigmoid(g, x));  // node '/layers.0/Sigmoid'
 *   g.output(y, 'y');
 *   const ir = m.finish();
 *
 * Names are unique across the whole model (subgraphs and functions included). Node names follow
 * the scope path (`/layers.3/mixer/in_proj/MatMul`); a node's outputs are `<node>_output_<i>`.
 * Every node is checked against the opset imports when it is added; ops*.ts infer and check shapes.
 */
import type { DType } from '../onnx/dtype.js';
import type { AttributeValue, FunctionIR, GraphIR, InitializerIR, ModelIR, NodeIR, TensorData, ValueInfoIR } from './ir.js';
import { checkOpset, DEFAULT_OPSETS, irVersionFor, type OpSchema, schemaKey } from './opset.js';
import type { Shape } from './shape.js';
import { checkShape } from './shape.js';
import { type KnownTensor, tensorFromArray } from './tensor.js';
import { Value, type ValueOwner } from './value.js';

export interface ModelBuilderOptions {
  name: string;
  opsets?: Record<string, number>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

export type Attrs = Record<string, AttributeValue | undefined>;

export interface NodeSpec {
  attrs?: Attrs;
  /** dtype and shape of each output, computed by the typed wrapper. */
  outputs: { dtype: DType; shape: Shape }[];
  domain?: string;
}

export class ModelBuilder {
  readonly opsets: Record<string, number>;
  readonly graph: GraphBuilder;
  readonly functions: FunctionIR[] = [];
  readonly metadata: Record<string, string> = {};
  /** Schemas of model-local functions (custom-domain ops this model defines). */
  readonly localSchemas = new Map<string, OpSchema>();
  private readonly names = new Set<string>();

  constructor(readonly options: ModelBuilderOptions) {
    this.opsets = { ...DEFAULT_OPSETS, ...(options.opsets ?? {}) };
    this.graph = new GraphBuilder(this, options.name, undefined, 'graph');
  }

  /** `base`, or `base_1`, `base_2`… : unique across the model. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Reserves an exact name (graph I/O, initializers); a clash is a bug in the caller. */
  reserve(name: string, what: string): string {
    if (this.names.has(name)) throw new Error(`${what} '${name}' is already defined in this model`);
    this.names.add(name);
    return name;
  }

  /**
   * Defines a model-local function `domain::name` (FunctionProto) whose body `body` builds from
   * formal inputs. Returns nothing: call it with `g.node(name, inputs, { domain, ... })`.
   */
  defineFunction(
    domain: string,
    name: string,
    inputs: { name: string; dtype: DType; shape: Shape }[],
    attributes: string[],
    body: (fg: GraphBuilder, args: Value[]) => Value[],
    docString?: string,
  ): void {
    const key = schemaKey(domain, name);
    if (this.localSchemas.has(key)) throw new Error(`function ${key} is already defined`);
    if (this.opsets[domain] === undefined) throw new Error(`function ${key}: declare an opset import for domain '${domain}' first`);
    const fg = new GraphBuilder(this, `${name}`, undefined, 'function');
    const args = inputs.map((i) => fg.input(`${name}.${i.name}`, i.dtype, i.shape));
    const outs = body(fg, args);
    const ir = fg.toGraphIR();
    const used = new Set<string>();
    for (const n of ir.nodes) used.add(n.domain);
    const opsetImports: Record<string, number> = {};
    for (const d of used) opsetImports[d] = this.opsets[d]!;
    this.functions.push({
      name,
      domain,
      inputs: args.map((a) => a.name),
      outputs: outs.map((o) => o.name),
      attributes,
      nodes: ir.nodes,
      opsetImports,
      docString,
    });
    this.localSchemas.set(key, { domain, since: this.opsets[domain]! });
  }

  finish(): ModelIR {
    return {
      irVersion: irVersionFor(this.opsets),
      producerName: this.options.producerName ?? 'mamba2-onnx',
      producerVersion: this.options.producerVersion ?? '0',
      opsetImports: { ...this.opsets },
      graph: this.graph.toGraphIR(),
      functions: this.functions,
      metadata: { ...this.metadata },
      docString: this.options.docString,
    };
  }
}

export class GraphBuilder implements ValueOwner {
  private readonly nodes: NodeIR[] = [];
  private readonly inputs: Value[] = [];
  private readonly outputs: ValueInfoIR[] = [];
  private readonly inits: InitializerIR[] = [];
  private readonly infos: Value[] = [];
  private readonly constCache = new Map<string, Value>();
  private scopes: string[] = [];

  constructor(
    readonly model: ModelBuilder,
    readonly name: string,
    readonly parent: GraphBuilder | undefined,
    /** 'function' bodies hold constants as Constant nodes (functions have no initializers). */
    readonly mode: 'graph' | 'subgraph' | 'function',
  ) {}

  get path(): string {
    return `/${this.scopes.join('/')}`;
  }

  canSee(other: ValueOwner): boolean {
    for (let g: GraphBuilder | undefined = this; g; g = g.parent) if (g === other) return true;
    return false;
  }

  /** Runs `fn` with `name` appended to the node-name scope. */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /**
   * `leaf` under the current scope path (`/layers.3/mixer/in_proj` + `/MatMul`): the one place node
   * and constant names are built (not yet made unique), also for error messages raised before a node exists.
   */
  nodeName(leaf: string): string {
    return `${this.path === '/' ? '' : this.path}/${leaf}`;
  }

  /** A subgraph (If/Loop/Scan body) that may read this graph's values. */
  subgraph(name: string): GraphBuilder {
    const sg = new GraphBuilder(this.model, name, this, 'subgraph');
    sg.scopes = [...this.scopes, name];
    return sg;
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = new Value(this, this.model.reserve(name, 'graph input'), dtype, [...shape], 'input');
    this.inputs.push(v);
    return v;
  }

  /** Declares `v` a graph output named `name` (an Identity is added when the names differ). */
  output(v: Value, name?: string, expected?: Shape): Value {
    this.assertVisible(v, 'output', name ?? v.name);
    if (expected) checkShape(v.shape, expected, `graph output '${name ?? v.name}'`, v.name);
    let out = v;
    const rename = name !== undefined && name !== v.name;
    // a node output of this graph that is not yet an output takes the output's name (no Identity copy)
    if (rename && v.kind === 'node' && v.owner === this && !this.outputs.some((o) => o.name === v.name)) {
      this.renameValue(v, this.model.reserve(name, 'graph output'));
      this.outputs.push({ name: v.name, dtype: v.dtype, shape: expected ?? v.shape });
      return v;
    }
    // subgraph outputs must be computed inside the subgraph: pass outer values through an Identity
    if (rename || (this.mode !== 'graph' && v.owner !== this)) {
      const id = rename ? this.model.reserve(name, 'graph output') : this.model.unique(`${v.name}_out`);
      const node: NodeIR = {
        name: this.model.unique(this.nodeName(`${name ?? 'output'}/Identity`)),
        opType: 'Identity',
        domain: '',
        inputs: [v.name],
        outputs: [id],
        attributes: {},
      };
      this.nodes.push(node);
      out = new Value(this, id, v.dtype, v.shape, 'node', node);
    }
    this.outputs.push({ name: out.name, dtype: out.dtype, shape: expected ?? out.shape });
    return out;
  }

  /** A named initializer (weights keep their checkpoint key). In subgraphs it goes to the root graph. */
  initializer(name: string, data: TensorData): Value {
    if (this.mode === 'function') throw new Error(`initializer '${name}': function bodies cannot hold initializers`);
    const root = this.root();
    const v = new Value(
      root,
      this.model.reserve(name, 'initializer'),
      data.dtype,
      [...data.dims],
      'initializer',
      undefined,
      data as KnownTensor,
    );
    root.inits.push({ name: v.name, data });
    return v;
  }

  /** A constant, deduplicated by content; named after the current scope. */
  constant(dtype: DType, dims: readonly number[], values: ArrayLike<number>): Value {
    const key = `${dtype}|${dims.join(',')}|${Array.from(values).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data = tensorFromArray(dtype, dims, values);
    let v: Value;
    if (this.mode === 'function') {
      const [out] = this.node('Constant', [], { attrs: { value: { type: 'tensor', value: data } }, outputs: [{ dtype, shape: dims }] });
      v = new Value(this, out!.name, dtype, [...dims], 'constant', out!.producer, data);
    } else {
      const root = this.root();
      const name = this.model.unique(this.nodeName('Constant'));
      v = new Value(root, name, dtype, [...dims], 'constant', undefined, data);
      root.inits.push({ name, data });
    }
    this.constCache.set(key, v);
    return v;
  }

  /** Adds one node; the typed wrappers in ops*.ts call this after computing output shapes. */
  node(opType: string, inputs: readonly (Value | undefined)[], spec: NodeSpec): Value[] {
    const domain = spec.domain ?? '';
    const name = this.model.unique(this.nodeName(opType));
    checkOpset(this.model.opsets, domain, opType, name, this.model.localSchemas);
    inputs.forEach((v, i) => v && this.assertVisible(v, name, `#${i} (${v.name})`));
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, a] of Object.entries(spec.attrs ?? {}).sort(([x], [y]) => (x < y ? -1 : 1))) if (a) attributes[k] = a;
    const outNames = spec.outputs.map((_, i) => this.model.unique(`${name}_output_${i}`));
    const node: NodeIR = { name, opType, domain, inputs: inputs.map((v) => v?.name ?? ''), outputs: outNames, attributes };
    this.nodes.push(node);
    const outs = spec.outputs.map((o, i) => new Value(this, outNames[i]!, o.dtype, [...o.shape], 'node', node));
    this.infos.push(...outs);
    return outs;
  }

  toGraphIR(): GraphIR {
    return {
      name: this.name,
      inputs: this.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape })),
      outputs: this.outputs,
      initializers: this.inits,
      nodes: this.nodes,
      valueInfo: this.infos.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape })),
    };
  }

  /** Renames `v` everywhere it appears: its producer, this graph's nodes and their subgraphs. */
  private renameValue(v: Value, to: string): void {
    const from = v.name;
    const visit = (nodes: NodeIR[]): void => {
      for (const n of nodes) {
        n.inputs = n.inputs.map((x) => (x === from ? to : x));
        n.outputs = n.outputs.map((x) => (x === from ? to : x));
        for (const a of Object.values(n.attributes)) if (a.type === 'graph') visit(a.value.nodes);
      }
    };
    visit(this.nodes);
    v.name = to;
  }

  private root(): GraphBuilder {
    let g: GraphBuilder = this;
    while (g.parent) g = g.parent;
    return g;
  }

  private assertVisible(v: Value, node: string, input: string): void {
    if (!this.canSee(v.owner)) {
      throw new Error(`${node}: input ${input} belongs to graph '${v.owner.path}', which is not visible from '${this.name}'`);
    }
  }
}
