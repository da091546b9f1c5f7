/**
 * The CUDA runtime (libcudart) through koffi, for the two small copies of a device decode step:
 * token ids up (B int64) and logits down (B·V floats), without a session run each. ORT runs its
 * CUDA work on its own stream, so every copy is bracketed by cudaDeviceSynchronize (a few µs when
 * the device is idle): the ids are on the device before the step's graph starts, and the logits
 * are read after it ends.
 *
 * Loaded only for the CUDA EP; where no libcudart is found, the runner keeps ORT's Identity copies.
 */
import type { TensorData } from '../backend.js';
import type { Ptr } from './api-table.js';
import type { Koffi } from './ort-api.js';

/** cudaMemcpyKind */
const HOST_TO_DEVICE = 1;
const DEVICE_TO_HOST = 2;
/** Library names tried in order (CUDA 13, 12, then the unversioned link). */
const NAMES = ['libcudart.so.13', 'libcudart.so.12', 'libcudart.so'];

type Memcpy = (dst: Ptr | TensorData, src: Ptr | TensorData, bytes: number, kind: number) => number;

export class CudaRuntime {
  private constructor(
    private readonly memcpy: Memcpy,
    private readonly deviceSynchronize: () => number,
    private readonly errorString: (code: number) => string,
    /** The library that was loaded. */
    readonly library: string,
  ) {}

  /** libcudart, or the reason it cannot be used (one line). */
  static load(koffi: Koffi): CudaRuntime | string {
    const tried: string[] = [];
    for (const name of NAMES) {
      try {
        const lib = koffi.load(name);
        return new CudaRuntime(
          lib.func('int cudaMemcpy(void* dst, const void* src, size_t count, int kind)') as Memcpy,
          lib.func('int cudaDeviceSynchronize()') as () => number,
          lib.func('const char* cudaGetErrorString(int error)') as (code: number) => string,
          name,
        );
      } catch (e) {
        tried.push(`${name}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
      }
    }
    return `no CUDA runtime library could be loaded (${tried.join('; ')})`;
  }

  /** device ← host array (all of it). */
  upload(device: Ptr, host: TensorData): void {
    this.sync('cudaDeviceSynchronize (before upload)');
    this.check('cudaMemcpy (host → device)', this.memcpy(device, host, host.byteLength, HOST_TO_DEVICE));
    this.sync('cudaDeviceSynchronize (after upload)');
  }

  /** host array ← device (as many bytes as the array holds). */
  download(host: TensorData, device: Ptr): void {
    this.sync('cudaDeviceSynchronize (before download)');
    this.check('cudaMemcpy (device → host)', this.memcpy(host, device, host.byteLength, DEVICE_TO_HOST));
  }

  private sync(what: string): void {
    this.check(what, this.deviceSynchronize());
  }

  private check(what: string, code: number): void {
    if (code !== 0) throw new Error(`${what}: CUDA error ${code} (${this.errorString(code)})`);
  }
}
