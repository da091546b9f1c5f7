/** The typed operator wrappers, one namespace: `op.MatMul(g, a, b)`. */
export * from './ops-math.js';
export * from './ops-nn.js';
export * from './ops-tensor.js';
export { Shape_ as Shape } from './ops-tensor.js';
