/** A value in a graph under construction: a handle that knows its type, shape and producer. */
import type { DType } from '../onnx/dtype.js';
import type { NodeIR, TensorData } from './ir.js';
import type { Shape } from './shape.js';
import { fmtShape } from './shape.js';

export type ValueKind = 'input' | 'initializer' | 'constant' | 'node';

/** Where a value lives: the builder that created it (graph, subgraph or function body). */
export interface ValueOwner {
  readonly path: string;
  /** True when values of `other` may be used here (same builder or an enclosing one). */
  canSee(other: ValueOwner): boolean;
}

export class Value {
  constructor(
    readonly owner: ValueOwner,
    /** Changes only through GraphBuilder.output, which renames a node output to a graph output name. */
    public name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: ValueKind,
    /** The node that computes it (kind 'node'). */
    readonly producer?: NodeIR,
    /** Known contents, for constants and initializers small enough to keep (used by shape inference). */
    readonly known?: TensorData & { values?: readonly number[] },
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${fmtShape(this.shape)}`;
  }
}
