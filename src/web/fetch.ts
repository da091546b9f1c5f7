/**
 * Downloads with byte progress, kept in the Cache API so that a reload reads them from disk
 * instead of the network. Cache entries are keyed by absolute URL and never revalidated: a model
 * directory that changes on the server needs `clearModelCache()` (the page has a button for it).
 */

/** Name of the Cache API cache that holds downloaded model files. */
export const CACHE_NAME = 'mamba2-onnx-v1';

export interface FetchOptions {
  /** Cache API cache name, or false to bypass the cache (default CACHE_NAME). */
  cache?: string | false;
  signal?: AbortSignal;
  /** Bytes read so far and the expected total (undefined while unknown). */
  onProgress?: (loaded: number, total: number | undefined) => void;
  /** Non-fatal problems (a cache that cannot store the file…). */
  onWarning?: (message: string) => void;
}

export interface ProbeOptions extends FetchOptions {
  /** A 404 resolves to undefined instead of an error (optional files). */
  missingOk: true;
}

export interface Fetched {
  bytes: Uint8Array;
  fromCache: boolean;
}

/** The Cache API, or undefined where the page has none (insecure context, some private modes). */
async function openCache(name: string | false, onWarning?: (m: string) => void): Promise<Cache | undefined> {
  if (name === false || typeof caches === 'undefined') return undefined;
  try {
    return await caches.open(name);
  } catch (e) {
    onWarning?.(`the Cache API is unavailable (${e instanceof Error ? e.message : String(e)}): files will be downloaded on every load`);
    return undefined;
  }
}

/** Body of `res` as bytes, reporting progress per chunk. */
async function readBody(res: Response, url: string, onProgress?: (loaded: number, total: number | undefined) => void): Promise<Uint8Array> {
  const len = Number(res.headers.get('content-length'));
  // With a content-encoding the length is the compressed size: only a hint then
  const exact = Number.isSafeInteger(len) && len >= 0 && !res.headers.get('content-encoding');
  const total = exact ? len : undefined;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.(bytes.byteLength, bytes.byteLength);
    return bytes;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let out = total !== undefined ? new Uint8Array(total) : undefined;
  onProgress?.(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (out && loaded + value.byteLength <= out.byteLength) out.set(value, loaded);
    else if (out)
      throw new Error(`${url}: the server sent more bytes than its Content-Length (${total}); got at least ${loaded + value.byteLength}`);
    else chunks.push(value);
    loaded += value.byteLength;
    onProgress?.(loaded, total);
  }
  if (out) {
    if (loaded !== out.byteLength) throw new Error(`${url}: download ended early, expected ${total} bytes (Content-Length), got ${loaded}`);
    return out;
  }
  out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  onProgress?.(loaded, loaded);
  return out;
}

/** `url` as bytes: from the cache when it holds it, else downloaded (and then cached). */
export async function fetchBytes(url: string, opts?: FetchOptions): Promise<Fetched>;
export async function fetchBytes(url: string, opts: ProbeOptions): Promise<Fetched | undefined>;
export async function fetchBytes(url: string, opts: FetchOptions & { missingOk?: true } = {}): Promise<Fetched | undefined> {
  const cache = await openCache(opts.cache ?? CACHE_NAME, opts.onWarning);
  const hit = cache ? await cache.match(url) : undefined;
  if (hit) return { bytes: await readBody(hit, url, opts.onProgress), fromCache: true };
  let res: Response;
  try {
    res = await fetch(url, { signal: opts.signal ?? null });
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw new Error(
      `${url}: the download failed (${e instanceof Error ? e.message : String(e)}); a server on another origin must allow CORS`,
      { cause: e },
    );
  }
  if (res.status === 404 && opts.missingOk) return undefined;
  if (!res.ok) throw new Error(`${url}: expected HTTP 200, got ${res.status} ${res.statusText}`.trim());
  const bytes = await readBody(res, url, opts.onProgress);
  if (cache) {
    try {
      const headers = {
        'content-type': res.headers.get('content-type') ?? 'application/octet-stream',
        'content-length': String(bytes.byteLength),
      };
      await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers }));
    } catch (e) {
      opts.onWarning?.(`${url}: not cached (${e instanceof Error ? e.message : String(e)}); it will be downloaded again next time`);
    }
  }
  return { bytes, fromCache: false };
}

/** Whether the cache holds `url` (false where there is no Cache API). */
export async function isCached(url: string, cacheName: string = CACHE_NAME): Promise<boolean> {
  const cache = await openCache(cacheName);
  return cache ? (await cache.match(url)) !== undefined : false;
}

/**
 * Drop cached model files: those under `prefix` (a model directory URL) or, without it, all of
 * them. Returns how many entries were removed.
 */
export async function clearModelCache(prefix?: string, cacheName: string = CACHE_NAME): Promise<number> {
  if (typeof caches === 'undefined') return 0;
  if (prefix === undefined) {
    const cache = await caches.open(cacheName);
    const n = (await cache.keys()).length;
    await caches.delete(cacheName);
    return n;
  }
  const cache = await caches.open(cacheName);
  let n = 0;
  for (const req of await cache.keys()) {
    if (req.url.startsWith(prefix) && (await cache.delete(req))) n++;
  }
  return n;
}
