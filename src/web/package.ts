/**
 * A model package as the browser sees it: one or more exported model directories ("variants" of one
 * model, e.g. an fp32 and an fp16 export), given as URLs or as picked `File`s. Each variant has its
 * mamba2-onnx.json; the loader reads those first, then fetches only the variant it runs.
 *
 *   'https://host/models/tiny/'                    one variant
 *   ['…/tiny-fp32/', '…/tiny-fp16/']               two variants, the loader picks
 *   input.files (a folder, or files of one or more model directories; webkitRelativePath groups them)
 */
import type { ModelMeta, WeightDType } from '../package/meta.js';
import { META_FILE } from '../package/meta.js';
import { describe } from '../runtime/backend.js';
import { parseModelMeta } from '../package/parse-meta.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '../package/meta.js';
import { fetchBytes, type FetchOptions } from './fetch.js';

/** Where a model comes from: model directory URL(s), or files picked by the user. */
export type ModelSource = string | URL | readonly (string | URL)[] | FileList | readonly File[];

/** The contents of one file of a variant: bytes (downloaded or read) or a Blob ORT reads itself. */
export interface FileData {
  bytes?: Uint8Array;
  blob?: Blob;
  size: number;
  fromCache: boolean;
}

export interface Variant {
  /** The directory URL, or the folder name of picked files. */
  readonly label: string;
  readonly meta: ModelMeta;
  /** The file is in the package (for URLs: listed in mamba2-onnx.json). */
  has(name: string): boolean;
  /** An optional file that may exist without being listed; undefined when it does not exist. */
  probe(name: string, opts: FetchOptions): Promise<FileData | undefined>;
  /** The file's data; `wantBytes` false lets a local File stay a Blob (ORT reads it without a copy here). */
  read(name: string, wantBytes: boolean, opts: FetchOptions): Promise<FileData>;
}

const decoder = new TextDecoder();

/** Directory URL of `u`: a trailing mamba2-onnx.json is dropped, a trailing slash added. */
export function directoryUrl(u: string | URL): string {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  let url: URL;
  try {
    url = new URL(String(u), base);
  } catch {
    throw new TypeError(`model URL: expected an absolute URL or one relative to the page, got ${JSON.stringify(String(u))}`);
  }
  url.hash = '';
  if (url.pathname.endsWith(`/${META_FILE}`)) url.pathname = url.pathname.slice(0, -META_FILE.length);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

class UrlVariant implements Variant {
  constructor(
    readonly label: string,
    readonly meta: ModelMeta,
  ) {}

  has(name: string): boolean {
    return name === this.meta.files.model || name === this.meta.files.data || (this.meta.files.tokenizer ?? []).includes(name);
  }

  async read(name: string, _wantBytes: boolean, opts: FetchOptions): Promise<FileData> {
    const r = await fetchBytes(new URL(name, this.label).href, opts);
    return { bytes: r.bytes, size: r.bytes.byteLength, fromCache: r.fromCache };
  }

  async probe(name: string, opts: FetchOptions): Promise<FileData | undefined> {
    if (this.has(name)) return this.read(name, true, opts);
    const r = await fetchBytes(new URL(name, this.label).href, { ...opts, missingOk: true });
    return r && { bytes: r.bytes, size: r.bytes.byteLength, fromCache: r.fromCache };
  }
}

class FileVariant implements Variant {
  constructor(
    readonly label: string,
    readonly meta: ModelMeta,
    private readonly files: ReadonlyMap<string, File>,
  ) {}

  has(name: string): boolean {
    return this.files.has(name);
  }

  async read(name: string, wantBytes: boolean, opts: FetchOptions): Promise<FileData> {
    const f = this.files.get(name);
    if (!f) throw new Error(`${this.label}: ${name} is missing among the picked files (${META_FILE} names it)`);
    if (!wantBytes) {
      opts.onProgress?.(f.size, f.size);
      return { blob: f, size: f.size, fromCache: false };
    }
    const bytes = new Uint8Array(await f.arrayBuffer());
    opts.onProgress?.(bytes.byteLength, bytes.byteLength);
    return { bytes, size: bytes.byteLength, fromCache: false };
  }

  async probe(name: string, opts: FetchOptions): Promise<FileData | undefined> {
    return this.has(name) ? this.read(name, true, opts) : undefined;
  }
}

/** Is `v` a list of Files (a FileList or File[])? */
function isFiles(v: unknown): v is FileList | readonly File[] {
  if (typeof FileList !== 'undefined' && v instanceof FileList) return true;
  return Array.isArray(v) && v.length > 0 && typeof File !== 'undefined' && v.every((f) => f instanceof File);
}

/** Read the variants of `source` (their mamba2-onnx.json only). */
export async function openVariants(source: ModelSource, opts: FetchOptions = {}): Promise<Variant[]> {
  if (isFiles(source)) return fileVariants(Array.from(source));
  const urls = typeof source === 'string' || source instanceof URL ? [source] : Array.isArray(source) ? source : undefined;
  if (!urls || urls.length === 0 || !urls.every((u) => typeof u === 'string' || u instanceof URL)) {
    throw new TypeError(`source: expected a model directory URL, a list of them, or picked Files, got ${describe(source)}`);
  }
  const dirs = [...new Set(urls.map(directoryUrl))];
  const variants = await Promise.all(
    dirs.map(async (dir) => {
      const metaUrl = new URL(META_FILE, dir).href;
      const { bytes } = await fetchBytes(metaUrl, opts).catch((e: unknown) => {
        throw new Error(
          `${dir} is not a model directory: ${e instanceof Error ? e.message : String(e)} (expected the output of \`mamba2-onnx export\`)`,
        );
      });
      return new UrlVariant(dir, parseModelMeta(decoder.decode(bytes), metaUrl));
    }),
  );
  checkSameModel(variants);
  return variants;
}

/** Group picked files by folder; every folder with a mamba2-onnx.json is a variant. */
async function fileVariants(files: File[]): Promise<Variant[]> {
  const groups = new Map<string, Map<string, File>>();
  for (const f of files) {
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath ?? '';
    const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    let g = groups.get(dir);
    if (!g) {
      g = new Map();
      groups.set(dir, g);
    }
    g.set(f.name, f);
  }
  const variants: Variant[] = [];
  // A tokenizer picked beside (or above) the model folders serves every variant that lacks one
  const shared = new Map<string, File>();
  for (const g of groups.values()) {
    for (const name of [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE]) if (g.has(name) && !shared.has(name)) shared.set(name, g.get(name)!);
  }
  for (const [dir, g] of groups) {
    const metaFile = g.get(META_FILE);
    if (!metaFile) continue;
    const label = dir === '' ? 'picked files' : dir;
    const meta = parseModelMeta(await metaFile.text(), `${label}/${META_FILE}`);
    for (const [name, f] of shared) if (!g.has(name)) g.set(name, f);
    for (const need of [meta.files.model, meta.files.data]) {
      if (need !== undefined && !g.has(need)) {
        throw new Error(`${label}: ${META_FILE} names ${need}, but it is not among the picked files (got ${[...g.keys()].join(', ')})`);
      }
    }
    variants.push(new FileVariant(label, meta, g));
  }
  if (variants.length === 0) {
    const names = files
      .map((f) => f.name)
      .slice(0, 8)
      .join(', ');
    throw new Error(
      `picked files: expected a model directory (${META_FILE}, model.onnx, model.onnx.data, tokenizer.json), got ${names}${files.length > 8 ? ', …' : ''}`,
    );
  }
  checkSameModel(variants);
  return variants;
}

/** Variants must be exports of one model (same shapes and vocabulary). */
function checkSameModel(variants: readonly Variant[]): void {
  const key = (m: ModelMeta): string => {
    const c = m.config;
    return `d_model ${c.dModel}, ${c.nLayer} layers, vocab ${c.vocabSize}, d_state ${c.dState}, ${c.nHeads} heads`;
  };
  const first = variants[0]!;
  for (const v of variants.slice(1)) {
    if (key(v.meta) !== key(first.meta)) {
      throw new Error(
        `model variants differ: ${first.label} is ${key(first.meta)}, ${v.label} is ${key(v.meta)} (expected exports of one model)`,
      );
    }
  }
}

/** Preference order of weight types per EP. fp16 weights need `shader-f16` on WebGPU. */
export function dtypePreference(ep: 'webgpu' | 'wasm', shaderF16: boolean): WeightDType[] {
  if (ep === 'webgpu') return shaderF16 ? ['fp16', 'fp32', 'int4', 'int8'] : ['fp32', 'int4', 'int8', 'fp16'];
  return ['fp32', 'int8', 'int4', 'fp16'];
}

/**
 * The variant to run on `ep`: `dtype` when given (it must exist), else the first available in
 * dtypePreference order. Also says why, for the page.
 */
export function chooseVariant(
  variants: readonly Variant[],
  ep: 'webgpu' | 'wasm',
  shaderF16: boolean,
  dtype: WeightDType | 'auto' = 'auto',
): { variant: Variant; why: string } {
  const have = variants.map((v) => v.meta.weightDType);
  if (dtype !== 'auto') {
    const v = variants.find((x) => x.meta.weightDType === dtype);
    if (!v) throw new RangeError(`dtype: expected one of the package's weight types (${have.join(', ')}), got '${dtype}'`);
    return { variant: v, why: `${dtype} weights (asked for)` };
  }
  const others = have.length > 1 ? `; the package has ${have.join(', ')}` : '';
  for (const d of dtypePreference(ep, shaderF16)) {
    const v = variants.find((x) => x.meta.weightDType === d);
    if (!v) continue;
    const reason = ep === 'webgpu' ? (shaderF16 ? 'the adapter has shader-f16' : 'the adapter has no shader-f16') : 'on wasm';
    return { variant: v, why: have.length > 1 ? `${d} weights (${reason}${others})` : `${d} weights` };
  }
  return { variant: variants[0]!, why: `${have[0]} weights (the only ones)` };
}
