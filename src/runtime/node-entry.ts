/**
 * The runtime's Node-only parts, reached through the package import `#node-backend` (package.json
 * "imports"): a browser bundler picks `no-node.ts` instead, so neither onnxruntime-node nor node:fs
 * ends up in a browser bundle, whatever the bundler.
 */
export { readModelDir } from './node-files.js';
export { nodeBackend } from './node.js';
export { capiBackend, namedBackend } from './capi/index.js';
