/**
 * ONNX Runtime's C API from TypeScript, through koffi (a C FFI for Node): loads the shared library,
 * walks OrtGetApiBase() → OrtApi, and binds the entries of api-table.ts as typed functions.
 *
 * Fail closed: every OrtStatus is checked (GetErrorCode / GetErrorMessage, then ReleaseStatus) and
 * becomes an OrtCallError naming the API call. The OrtEnv, the default allocator and the CPU
 * OrtMemoryInfo are created once per library and live as long as the process (the Env must outlive
 * every session); everything else is released by its owner (tensor.ts, session.ts).
 *
 * Which library: `libraryPath` (option), else $MAMBA2_ONNX_ORT_LIB, else the one onnxruntime-node
 * ships beside its binding (so both backends share one ONNX Runtime in the process).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type * as KoffiTypes from 'koffi';
import {
  type ASYNC_ENTRIES,
  ORT_API_TABLE,
  ORT_ERROR_CODES,
  ORT_ENUM,
  ORT_HEADER_API_VERSION,
  ORT_MIN_API_VERSION,
  type OrtRawApi,
  type Ptr,
  type Status,
} from './api-table.js';

export type Koffi = typeof KoffiTypes;
export const ORT_LIB_ENV = 'MAMBA2_ONNX_ORT_LIB';

/** koffi or the ONNX Runtime library cannot be used here (one line saying why). */
export class CapiUnavailableError extends Error {
  override readonly name = 'CapiUnavailableError';
}

/** An OrtApi call returned a non-OK OrtStatus. */
export class OrtCallError extends Error {
  override readonly name = 'OrtCallError';
  constructor(
    readonly call: string,
    readonly code: number,
    /** ORT's message as it came (source-path prefix included). */
    readonly ortMessage: string,
  ) {
    super(`${call}: ${ORT_ERROR_CODES[code] ?? `ORT error ${code}`}: ${ortMessage.replace(/^\/\S+:\d+\s+/, '').trim()}`);
  }
}

const require = createRequire(import.meta.url);
let koffiModule: Koffi | undefined;

/** koffi, loaded on first use (a missing or broken install is one clear line, not an import failure). */
export function loadKoffi(): Koffi {
  if (koffiModule) return koffiModule;
  try {
    koffiModule = require('koffi') as Koffi;
    return koffiModule;
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new CapiUnavailableError(
      `the C-API backend needs the npm package koffi, which could not be loaded (${why}); install it with \`npm install koffi\` or use the onnxruntime-node backend`,
    );
  }
}

/** The ONNX Runtime library that onnxruntime-node ships beside its binding, for this platform. */
export function defaultOrtLibrary(): string {
  let main: string;
  try {
    main = require.resolve('onnxruntime-node');
  } catch {
    throw new CapiUnavailableError(
      `no ONNX Runtime library given and onnxruntime-node is not installed: pass libraryPath or set ${ORT_LIB_ENV}`,
    );
  }
  const dir = join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  if (process.platform === 'win32') return join(dir, 'onnxruntime.dll');
  if (process.platform === 'darwin') {
    const found = existsSync(dir) ? readdirSync(dir).find((f) => /^libonnxruntime\.[\d.]+\.dylib$/.test(f)) : undefined;
    return join(dir, found ?? 'libonnxruntime.dylib');
  }
  return join(dir, 'libonnxruntime.so.1');
}

type AsyncName = (typeof ASYNC_ENTRIES)[number];
type StatusName = { [K in keyof OrtRawApi]: ReturnType<OrtRawApi[K]> extends Status ? K : never }[keyof OrtRawApi];
type DropLast<T extends unknown[]> = T extends [...infer H, unknown] ? H : never;
type Fn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

/** One loaded ONNX Runtime library with its OrtApi bound. Get it through `loadOrt()`. */
export class OrtLib {
  /** The bound entries; status results are unchecked here (use `call`, `make`). */
  readonly raw: OrtRawApi;
  private readonly fns = new Map<string, Fn>();
  private envPtr: Ptr | undefined;
  private allocatorPtr: Ptr | undefined;
  private cpuInfo: Ptr | undefined;

  constructor(
    readonly koffi: Koffi,
    /** Absolute path of the library. */
    readonly path: string,
    /** GetVersionString(), e.g. "1.30.0". */
    readonly version: string,
    /** The OrtApi version asked of GetApi (the library's own, capped at the header's). */
    readonly apiVersion: number,
    api: Ptr,
  ) {
    const raw: Record<string, unknown> = {};
    for (const [name, [index, since, result, args]] of Object.entries(ORT_API_TABLE)) {
      if (since > apiVersion) {
        raw[name] = () => {
          throw new OrtCallError(name, 9, `needs ONNX Runtime ≥ 1.${since}, this library is ${version} (${path})`);
        };
        continue;
      }
      const ptr = koffi.decode(api, index * 8, 'void*') as Ptr | null;
      if (ptr === null) throw new CapiUnavailableError(`${path}: OrtApi entry ${name} (index ${index}) is NULL in ONNX Runtime ${version}`);
      // ORTCHAR_T is wchar_t (UTF-16) on Windows, char elsewhere
      const types =
        name === 'CreateSession' && process.platform === 'win32' ? args.map((a, i) => (i === 1 ? 'const char16_t*' : a)) : [...args];
      const fn = koffi.decode(ptr, koffi.proto(result, types)) as Fn;
      this.fns.set(name, fn);
      raw[name] = fn;
    }
    this.raw = raw as unknown as OrtRawApi;
  }

  /** True when the library's OrtApi has the entry (its version is at least the entry's). */
  has(name: keyof OrtRawApi): boolean {
    return this.fns.has(name);
  }

  /** Throw an OrtCallError for a non-null status (its message read, the status released). */
  check(call: string, status: Status): void {
    if (status === null || status === 0n) return;
    const code = this.raw.GetErrorCode(status);
    const message = this.raw.GetErrorMessage(status);
    this.raw.ReleaseStatus(status);
    throw new OrtCallError(call, code, message);
  }

  /** Call a status-returning entry and check the status. */
  call<K extends StatusName>(name: K, ...args: Parameters<OrtRawApi[K]>): void {
    this.check(name, (this.raw[name] as (...a: unknown[]) => Status)(...args));
  }

  /** Call an entry whose last argument is a pointer out-parameter (`T** out`); returns the pointer. */
  make<K extends StatusName>(name: K, ...args: DropLast<Parameters<OrtRawApi[K]>>): Ptr {
    const out = new BigUint64Array(1);
    this.check(name, (this.raw[name] as (...a: unknown[]) => Status)(...args, out));
    return out[0]!;
  }

  /** Call a status-returning entry on a worker thread (koffi async); its out-parameter, if any, is the returned pointer. */
  async callAsync<K extends AsyncName>(
    name: K,
    args: DropLast<Parameters<OrtRawApi[K]>> | Parameters<OrtRawApi[K]>,
    withOut: boolean,
  ): Promise<Ptr> {
    const fn = this.fns.get(name)!;
    const out = withOut ? (this.koffi.alloc('void*', 1) as Ptr) : null;
    try {
      const status = await new Promise<Status>((ok, fail) =>
        fn.async(...args, ...(out === null ? [] : [out]), (err: unknown, res: Status) => (err ? fail(err) : ok(res))),
      );
      this.check(name, status);
      return out === null ? 0n : ((this.koffi.decode(out, 'void*') as Ptr | null) ?? 0n);
    } finally {
      if (out !== null) this.koffi.free(out);
    }
  }

  /** A size_t / int out-parameter call: returns the number. */
  count<K extends StatusName>(name: K, ...args: DropLast<Parameters<OrtRawApi[K]>>): number {
    const out = new BigUint64Array(1);
    this.check(name, (this.raw[name] as (...a: unknown[]) => Status)(...args, out));
    return Number(out[0]);
  }

  /** The process-wide OrtEnv of this library (created once, never released: sessions need it to the end). */
  env(): Ptr {
    this.envPtr ??= this.make('CreateEnv', 3, 'mamba2-onnx');
    return this.envPtr;
  }

  /** ORT's default CPU allocator (owned by ORT, never released). */
  allocator(): Ptr {
    this.allocatorPtr ??= this.make('GetAllocatorWithDefaultOptions');
    return this.allocatorPtr;
  }

  /** The CPU OrtMemoryInfo (process lifetime), for host tensors and host-bound outputs. */
  cpuMemoryInfo(): Ptr {
    this.cpuInfo ??= this.make('CreateCpuMemoryInfo', ORT_ENUM.OrtDeviceAllocator, ORT_ENUM.OrtMemTypeDefault);
    return this.cpuInfo;
  }

  /** A NUL-terminated C string at `ptr`. */
  cString(ptr: Ptr): string {
    return this.koffi.decode(ptr, 'char', -1) as string;
  }

  /** Free memory ORT allocated with the default allocator (names, arrays). */
  free(ptr: Ptr | null): void {
    if (ptr !== null && ptr !== 0n) this.call('AllocatorFree', this.allocator(), ptr);
  }

  /** A string ORT allocated with the default allocator: read, then freed. */
  takeString(ptr: Ptr): string {
    try {
      return this.cString(ptr);
    } finally {
      this.free(ptr);
    }
  }

  /** `n` pointers stored at `ptr`. */
  pointers(ptr: Ptr, n: number): Ptr[] {
    if (n === 0) return [];
    return (this.koffi.decode(ptr, 'void*', n) as (Ptr | null)[]).map((p) => p ?? 0n);
  }

  /** Names of the execution providers compiled into this library (GetAvailableProviders). */
  providers(): string[] {
    const out = new BigUint64Array(1);
    const n = new Int32Array(1);
    this.call('GetAvailableProviders', out, n);
    try {
      return this.pointers(out[0]!, n[0]!).map((p) => this.cString(p));
    } finally {
      this.call('ReleaseAvailableProviders', out[0]!, n[0]!);
    }
  }

  /** GetBuildInfoString(), or '' when the library predates it. */
  buildInfo(): string {
    return this.has('GetBuildInfoString') ? this.raw.GetBuildInfoString() : '';
  }
}

const loaded = new Map<string, OrtLib>();

/** Load (once per path) an ONNX Runtime library and bind its OrtApi. Errors are one line. */
export function loadOrt(opts: { libraryPath?: string } = {}): OrtLib {
  const given = opts.libraryPath ?? process.env[ORT_LIB_ENV];
  const path = resolve(given ?? defaultOrtLibrary());
  const cached = loaded.get(path);
  if (cached) return cached;
  const from = opts.libraryPath !== undefined ? 'libraryPath' : given !== undefined ? `$${ORT_LIB_ENV}` : 'the onnxruntime-node install';
  if (!existsSync(path)) throw new CapiUnavailableError(`no ONNX Runtime library at ${path} (from ${from})`);
  const koffi = loadKoffi();
  let lib: KoffiTypes.LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (e) {
    throw new CapiUnavailableError(
      `could not load the ONNX Runtime library ${path} (from ${from}): ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
    );
  }
  let base: Ptr | null;
  try {
    base = lib.func('void* OrtGetApiBase()')() as Ptr | null;
  } catch (e) {
    throw new CapiUnavailableError(
      `${path} is not an ONNX Runtime library: it has no OrtGetApiBase (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`,
    );
  }
  if (base === null) throw new CapiUnavailableError(`${path}: OrtGetApiBase() returned NULL`);
  // struct OrtApiBase { const OrtApi* (*GetApi)(uint32_t version); const char* (*GetVersionString)(void); }
  const getApi = koffi.decode(koffi.decode(base, 0, 'void*'), koffi.proto('void*', ['uint32_t'])) as (v: number) => Ptr | null;
  const getVersion = koffi.decode(koffi.decode(base, 8, 'void*'), koffi.proto('const char*', [])) as () => string;
  const version = getVersion();
  const minor = Number(/^1\.(\d+)\./.exec(version)?.[1] ?? NaN);
  if (!Number.isInteger(minor) || minor < ORT_MIN_API_VERSION) {
    throw new CapiUnavailableError(`${path} is ONNX Runtime ${version}; the C-API backend needs 1.${ORT_MIN_API_VERSION} or newer`);
  }
  const apiVersion = Math.min(minor, ORT_HEADER_API_VERSION);
  const api = getApi(apiVersion);
  if (api === null) throw new CapiUnavailableError(`${path} (ONNX Runtime ${version}) does not support OrtApi version ${apiVersion}`);
  const ort = new OrtLib(koffi, path, version, apiVersion, api);
  loaded.set(path, ort);
  return ort;
}
