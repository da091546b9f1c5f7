/**
 * loadModel: a model package (URLs or Files) → a Mamba2Model on onnxruntime-web, WebGPU first and
 * wasm as fallback.
 *
 *   probe WebGPU ─▶ read every variant's mamba2-onnx.json ─▶ for each EP (webgpu, wasm):
 *     choose a variant (fp16 on a shader-f16 adapter, else fp32) ─▶ fetch model, data, tokenizer
 *     (Cache API) ─▶ create the session ─ fails? ─▶ next EP
 */
import type { WeightDType } from '../package/meta.js';
import { EpUnavailableError, SessionCreateError, describe } from '../runtime/backend.js';
import { Mamba2Model } from '../runtime/model.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '../package/meta.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { WebBackend, WebEpUnavailableError, type ExternalDataFile, type WebEpName, type WebRuntimeOptions } from '../runtime/web.js';
import { CACHE_NAME } from './fetch.js';
import { detectWebGpu, type GpuInfo } from './gpu.js';
import { chooseVariant, openVariants, type FileData, type ModelSource, type Variant } from './package.js';

export type EpChoice = 'auto' | WebEpName;

export interface WebLoadOptions extends WebRuntimeOptions {
  /** 'auto' (default): WebGPU when the browser has an adapter, else wasm; or one EP (no fallback). */
  ep?: EpChoice;
  /** Weight type to run; 'auto' (default) picks per EP (see dtypePreference). */
  dtype?: WeightDType | 'auto';
  /** Cache API cache for downloads, or false to always download (default 'mamba2-onnx-v1'). */
  cache?: string | false;
  /** Keep the recurrent state on the GPU between steps (default true; WebGPU only). */
  deviceState?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  /** Non-fatal problems (a file that could not be cached…). */
  onWarning?: (message: string) => void;
}

export interface LoadProgress {
  stage: 'probe' | 'meta' | 'download' | 'session' | 'ready';
  /** Bytes of the chosen variant's files read so far, and their total (0 while unknown). */
  loaded: number;
  total: number;
  /** The file being read (download stage). */
  file?: string;
  /** Every file so far came from the cache. */
  fromCache?: boolean;
  ep?: WebEpName;
  /** One line for a status bar. */
  message: string;
}

export interface LoadedFile {
  name: string;
  bytes: number;
  fromCache: boolean;
}

export interface WebModel {
  readonly model: Mamba2Model;
  /** The EP the session runs on. */
  readonly ep: WebEpName;
  /** EPs tried before `ep` and why they were not used (e.g. WebGPU missing). */
  readonly fallbacks: readonly { ep: WebEpName; reason: string }[];
  readonly gpu: GpuInfo;
  readonly weightDType: WeightDType;
  /** Which variant of the package runs (directory URL or folder), and why. */
  readonly variant: string;
  readonly why: string;
  readonly files: readonly LoadedFile[];
  release(): Promise<void>;
}

/** `dir/name` for messages (URL labels already end in a slash). */
const fileLabel = (v: Variant, name: string): string => (v.label.endsWith('/') ? `${v.label}${name}` : `${v.label}/${name}`);

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 2 : 1)} MiB`;

/** Load a model package and create its session. */
export async function loadModel(source: ModelSource, opts: WebLoadOptions = {}): Promise<WebModel> {
  const epChoice = opts.ep ?? 'auto';
  if (!['auto', 'webgpu', 'wasm'].includes(epChoice))
    throw new RangeError(`opts.ep: expected 'auto', 'webgpu' or 'wasm', got ${describe(epChoice)}`);
  const progress = opts.onProgress ?? (() => {});
  const fetchOpts = {
    cache: opts.cache ?? CACHE_NAME,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
  };

  progress({ stage: 'probe', loaded: 0, total: 0, message: 'checking WebGPU…' });
  const gpu = await detectWebGpu();
  const fallbacks: { ep: WebEpName; reason: string }[] = [];
  let eps: WebEpName[];
  if (epChoice === 'auto') {
    eps = gpu.available ? ['webgpu', 'wasm'] : ['wasm'];
    if (!gpu.available) fallbacks.push({ ep: 'webgpu', reason: gpu.reason ?? 'WebGPU is unavailable' });
  } else if (epChoice === 'webgpu' && !gpu.available) {
    throw new WebEpUnavailableError('webgpu', gpu.reason ?? 'no WebGPU adapter');
  } else eps = [epChoice];

  progress({ stage: 'meta', loaded: 0, total: 0, message: 'reading mamba2-onnx.json…' });
  const variants = await openVariants(source, fetchOpts);

  let lastError: unknown;
  for (const [i, ep] of eps.entries()) {
    const { variant, why } = chooseVariant(variants, ep, ep === 'webgpu' && gpu.shaderF16, opts.dtype ?? 'auto');
    const files = await readVariant(variant, variants, ep, fetchOpts, progress);
    progress({ stage: 'session', loaded: files.bytes, total: files.bytes, ep, message: `creating the ${ep} session…` });
    try {
      const model = await Mamba2Model.create({
        model: files.model,
        meta: variant.meta,
        ...(files.tokenizer ? { tokenizer: files.tokenizer } : {}),
        backend: new WebBackend({ wasmPaths: opts.wasmPaths, numThreads: opts.numThreads, externalData: files.externalData }),
        ep: ep === 'wasm' ? 'cpu' : 'webgpu',
        ...(opts.deviceState !== undefined ? { deviceState: opts.deviceState } : {}),
      });
      progress({
        stage: 'ready',
        loaded: files.bytes,
        total: files.bytes,
        ep,
        fromCache: files.list.every((f) => f.fromCache),
        message: `ready on ${ep}`,
      });
      return {
        model,
        ep,
        fallbacks,
        gpu,
        weightDType: variant.meta.weightDType,
        variant: variant.label,
        why,
        files: files.list,
        release: () => model.release(),
      };
    } catch (e) {
      const last = i === eps.length - 1;
      if (last || !(e instanceof EpUnavailableError || e instanceof SessionCreateError)) throw e;
      fallbacks.push({ ep, reason: e instanceof EpUnavailableError ? e.reason : e.message });
      lastError = e;
    }
  }
  throw lastError ?? new Error('loadModel: no execution provider to try');
}

interface VariantFiles {
  model: Uint8Array;
  externalData: ExternalDataFile[];
  tokenizer: TextTokenizer | undefined;
  list: LoadedFile[];
  bytes: number;
}

type FetchOpts = { cache: string | false; signal?: AbortSignal; onWarning?: (m: string) => void };

/** Fetch (or read) the files a session needs, all at once, with combined progress. */
async function readVariant(
  variant: Variant,
  all: readonly Variant[],
  ep: WebEpName,
  fetchOpts: FetchOpts,
  progress: (p: LoadProgress) => void,
): Promise<VariantFiles> {
  const m = variant.meta.files;
  const jobs: { name: string; bytes: boolean }[] = [{ name: m.model, bytes: true }];
  if (m.data) jobs.push({ name: m.data, bytes: false });
  const loaded = new Map<string, number>();
  const totals = new Map<string, number | undefined>();
  const report = (file: string): void => {
    const l = [...loaded.values()].reduce((a, b) => a + b, 0);
    const known = totals.size === jobs.length && [...totals.values()].every((t) => t !== undefined);
    const t = known ? [...totals.values()].reduce<number>((a, b) => a + (b ?? 0), 0) : 0;
    const of = t > 0 ? ` of ${mib(t)}` : '';
    progress({ stage: 'download', loaded: l, total: t, file, ep, message: `loading ${variant.label}: ${mib(l)}${of}` });
  };
  const [tok, ...data] = await Promise.all([
    readTokenizer(variant, all, fetchOpts),
    ...jobs.map(
      (j): Promise<FileData> =>
        variant.read(j.name, j.bytes, {
          ...fetchOpts,
          onProgress: (l, t) => {
            loaded.set(j.name, l);
            totals.set(j.name, t);
            report(j.name);
          },
        }),
    ),
  ]);
  const byName = new Map(jobs.map((j, i) => [j.name, data[i]!]));
  const externalData: ExternalDataFile[] = [];
  if (m.data) {
    const d = byName.get(m.data)!;
    externalData.push({ path: m.data, data: d.bytes ?? d.blob! });
  }
  const list = [
    ...jobs.map((j) => ({ name: j.name, bytes: byName.get(j.name)!.size, fromCache: byName.get(j.name)!.fromCache })),
    ...tok.files,
  ];
  return { model: byName.get(m.model)!.bytes!, externalData, tokenizer: tok.tokenizer, list, bytes: list.reduce((a, f) => a + f.bytes, 0) };
}

/**
 * The tokenizer: from the chosen variant, else from another variant of the same model. Like the
 * Node loader, a tokenizer.json that mamba2-onnx.json does not list is still found (probed).
 */
async function readTokenizer(
  variant: Variant,
  all: readonly Variant[],
  fetchOpts: FetchOpts,
): Promise<{ tokenizer: TextTokenizer | undefined; files: LoadedFile[] }> {
  const order = [variant, ...all.filter((v) => v !== variant)];
  const listed = order.find((v) => v.has(TOKENIZER_FILE));
  for (const v of listed ? [listed] : order) {
    const tj = await v.probe(TOKENIZER_FILE, fetchOpts);
    if (!tj) continue;
    // tokenizer_config.json: trust the listing when tokenizer.json was listed, else probe it too
    const tc = listed && !v.has(TOKENIZER_CONFIG_FILE) ? undefined : await v.probe(TOKENIZER_CONFIG_FILE, fetchOpts);
    const json = (d: FileData, name: string): unknown => {
      try {
        return JSON.parse(new TextDecoder().decode(d.bytes));
      } catch (e) {
        throw new Error(`${fileLabel(v, name)}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
      }
    };
    const tokenizer = TextTokenizer.fromJSON(
      json(tj, TOKENIZER_FILE),
      tc ? json(tc, TOKENIZER_CONFIG_FILE) : {},
      fileLabel(v, TOKENIZER_FILE),
    );
    const files = [{ name: TOKENIZER_FILE, bytes: tj.size, fromCache: tj.fromCache }];
    if (tc) files.push({ name: TOKENIZER_CONFIG_FILE, bytes: tc.size, fromCache: tc.fromCache });
    return { tokenizer, files };
  }
  return { tokenizer: undefined, files: [] };
}
