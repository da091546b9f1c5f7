/**
 * The demo page (web/): `npm run dev` serves it, `npm run build:web` builds it into dist/web/,
 * `npx vite preview` serves the build. Both servers send the COOP/COEP headers that multi-threaded
 * wasm needs, and serve onnxruntime-web's runtime files under `ort/` (the page points
 * `ort.env.wasm.wasmPaths` there).
 *
 * Set MAMBA2_ONNX_MODELS=<dir> to serve exported model directories under /models/ (dev and preview):
 *   MAMBA2_ONNX_MODELS=out npm run dev   →   model URL /models/<name>/
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Connect, type Plugin, type UserConfig } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const ortDist = join(root, 'node_modules/onnxruntime-web/dist');
/** What `onnxruntime-web/webgpu` loads at run time (its wasm build with the WebGPU EP). */
export const ORT_FILES = ['ort-wasm-simd-threaded.asyncify.wasm', 'ort-wasm-simd-threaded.asyncify.mjs'];

/** Cross-origin isolation: SharedArrayBuffer, hence wasm threads. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const MIME: Record<string, string> = {
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.onnx': 'application/octet-stream',
  '.data': 'application/octet-stream',
};

/** Send a file with its MIME type and length (a 404 when it is missing or outside `base`). */
function sendFile(base: string, rel: string, res: ServerResponse): boolean {
  const file = normalize(join(base, decodeURIComponent(rel)));
  if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) return false;
  res.setHeader('Content-Type', MIME[extname(file)] ?? 'application/octet-stream');
  res.setHeader('Content-Length', statSync(file).size);
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
  createReadStream(file).pipe(res);
  return true;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: Connect.NextFunction) => void;

/** Serve `dir` under `prefix` (e.g. /ort/), calling `onRequest` with each path served. */
function serveDir(prefix: string, dir: string, onRequest?: (path: string) => void): Middleware {
  const base = resolve(dir);
  return (req, res, next) => {
    const path = (req.url ?? '').split('?')[0]!;
    const at = path.indexOf(prefix);
    if (at < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    const rel = path.slice(at + prefix.length);
    if (!sendFile(base, rel, res)) {
      res.statusCode = 404;
      res.end(`not found: ${path}`);
      return;
    }
    onRequest?.(path);
  };
}

/** onnxruntime-web's runtime files: served from node_modules in dev, emitted as ort/* by a build. */
function ortFiles(): Plugin {
  return {
    name: 'mamba2-onnx:ort-files',
    configureServer: (server) => void server.middlewares.use(serveDir('/ort/', ortDist)),
    generateBundle() {
      for (const f of ORT_FILES) this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: readFileSync(join(ortDist, f)) });
    },
  };
}

/** Exported model directories under /models/ (dev and preview). */
function modelsDir(dir: string | undefined, onRequest?: (path: string) => void): Plugin {
  return {
    name: 'mamba2-onnx:models',
    configureServer: (server) => void (dir && server.middlewares.use(serveDir('/models/', dir, onRequest))),
    configurePreviewServer: (server) => void (dir && server.middlewares.use(serveDir('/models/', dir, onRequest))),
  };
}

/**
 * onnxruntime-node becomes a stub in the browser bundle (the runtime's own Node-only modules are
 * already swapped by the package's `#node-backend` import, browser condition).
 */
function browserStubs(): Plugin {
  const stub = '\0mamba2-onnx:node-only';
  return {
    name: 'mamba2-onnx:browser-stubs',
    enforce: 'pre',
    resolveId(id) {
      if (id === 'onnxruntime-node') return stub;
      return null;
    },
    load(id) {
      if (id !== stub) return null;
      const msg = 'this part of mamba2-onnx runs in Node only: in a browser, load models with loadModel() from mamba2-onnx/web';
      return `const fail = () => { throw new Error(${JSON.stringify(msg)}); };\nexport const nodeBackend = fail;\nexport const readModelDir = fail;\nexport default {};\n`;
    },
  };
}

export interface WebConfigOptions {
  /** Serve this directory of exported models under /models/. */
  modelsDir?: string;
  /** Called with each /models/ path served (tests count downloads with it). */
  onModelRequest?: (path: string) => void;
}

/** The whole configuration, parametrised for tests (test/browser starts its own server). */
export function webConfig(opts: WebConfigOptions = {}): UserConfig {
  return {
    root: join(root, 'web'),
    base: './',
    publicDir: false,
    clearScreen: false,
    server: { headers: ISOLATION_HEADERS, fs: { allow: [root] } },
    preview: { headers: ISOLATION_HEADERS },
    // onnxruntime-web's build without the wasm glue embedded: it loads ort/*.mjs from wasmPaths, and
    // its wasm threads start from that file too (with the embedded glue they would start from the
    // page's own bundle). Not pre-bundled: it finds its files relative to its own module.
    resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
    optimizeDeps: { exclude: ['onnxruntime-web'], include: ['@huggingface/tokenizers', '@petamoriken/float16'] },
    build: { outDir: join(root, 'dist/web'), emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
    plugins: [browserStubs(), ortFiles(), modelsDir(opts.modelsDir, opts.onModelRequest)],
  };
}

export default defineConfig(webConfig({ modelsDir: process.env.MAMBA2_ONNX_MODELS }));
