/** What `#node-backend` resolves to in browsers: clear errors instead of onnxruntime-node and node:fs. */
const NODE_ONLY = 'this part of mamba2-onnx runs in Node only: in a browser, load models with loadModel() from mamba2-onnx/web';

export function readModelDir(): never {
  throw new Error(`Mamba2Model.load(dir): ${NODE_ONLY}`);
}

export function nodeBackend(): never {
  throw new Error(`the default (onnxruntime-node) backend: ${NODE_ONLY}; pass opts.backend`);
}

export function capiBackend(): never {
  throw new Error(`the C-API (koffi) backend: ${NODE_ONLY}; pass a WebBackend as opts.backend`);
}

export function namedBackend(name: unknown): never {
  throw new Error(`backend ${JSON.stringify(name)}: ${NODE_ONLY}; pass a WebBackend as opts.backend`);
}
