/**
 * Minimal, bounds-checked zip reader over a file handle, enough for `torch.save` archives: the end
 * records (zip64 included: torch writes them always), the central directory (zip64 extra fields for
 * sizes/offsets ≥ 4 GiB) and local headers (to find where an entry's data starts). Entries are read
 * at positions; nothing reads the whole file. Stored entries are read in place; deflated ones only
 * whole (small entries such as data.pkl). Ref: PKWARE APPNOTE.TXT 6.3 (4.3.6–4.3.16, 4.5.3).
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import { CheckpointError } from './types.js';
import { readExact } from './tensor-bytes.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
/** Central directories larger than this are refused (a torch archive's is ~100 bytes per tensor). */
const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 2 ** 20;

export const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

function u64(dv: DataView, at: number, path: string, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(path, `zip: ${what} ${v} is too large`);
  return Number(v);
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

export class ZipReader {
  private readonly dataStarts = new Map<string, number>();

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly entries: ReadonlyMap<string, ZipEntry>,
    /** Entry data must end before this offset (the central directory's start). */
    private readonly dataLimit: number,
  ) {}

  /** Read the end records and the central directory of the zip open as `fh` (`fileSize` bytes). */
  static async open(fh: FileHandle, path: string, fileSize: number): Promise<ZipReader> {
    if (fileSize < EOCD_SIZE) throw new CheckpointError(path, `zip: file has ${fileSize} bytes, too short for a zip`);
    const tailLen = Math.min(fileSize, EOCD_SIZE + 0xffff);
    const tailStart = fileSize - tailLen;
    const tail = await readExact(fh, path, tailStart, tailLen, 'zip end records');
    const tv = view(tail);
    let eocd = -1;
    for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tv.getUint16(i + 20, true) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new CheckpointError(path, 'zip: no end-of-central-directory record (not a zip, or truncated)');
    if (tv.getUint16(eocd + 4, true) !== 0 || tv.getUint16(eocd + 6, true) !== 0) {
      throw new CheckpointError(path, 'zip: multi-disk archives are not supported');
    }
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    let cdLimit = tailStart + eocd;
    const loc = eocd - LOCATOR_SIZE;
    if (loc >= 0 && tv.getUint32(loc, true) === SIG_ZIP64_LOCATOR) {
      const z64At = u64(tv, loc + 8, path, 'zip64 end record offset');
      if (z64At + ZIP64_EOCD_SIZE > tailStart + loc)
        throw new CheckpointError(path, `zip: zip64 end record offset ${z64At} is out of range`);
      const z = view(await readExact(fh, path, z64At, ZIP64_EOCD_SIZE, 'zip64 end record'));
      if (z.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new CheckpointError(path, `zip: no zip64 end record at offset ${z64At}`);
      count = u64(z, 32, path, 'entry count');
      cdSize = u64(z, 40, path, 'central directory size');
      cdOffset = u64(z, 48, path, 'central directory offset');
      cdLimit = z64At;
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) {
      throw new CheckpointError(path, `zip: central directory of ${cdSize} bytes exceeds the ${MAX_CENTRAL_DIRECTORY_BYTES}-byte limit`);
    }
    if (cdOffset + cdSize > cdLimit) {
      throw new CheckpointError(
        path,
        `zip: central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record at ${cdLimit} (truncated?)`,
      );
    }
    if (count * CENTRAL_SIZE > cdSize) {
      throw new CheckpointError(path, `zip: ${count} entries cannot fit a ${cdSize}-byte central directory`);
    }
    const cd = await readExact(fh, path, cdOffset, cdSize, 'zip central directory');
    return new ZipReader(fh, path, parseCentralDirectory(cd, count, path), cdOffset);
  }

  /** Offset of the entry's first data byte, from its local header (cached). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataStarts.get(entry.name);
    if (cached !== undefined) return cached;
    const at = entry.localHeaderOffset;
    if (at + LOCAL_SIZE > this.dataLimit)
      throw new CheckpointError(this.path, `zip: local header of ${entry.name} at ${at} is out of range`);
    const h = view(await readExact(this.fh, this.path, at, LOCAL_SIZE, `zip local header of ${entry.name}`));
    if (h.getUint32(0, true) !== SIG_LOCAL) throw new CheckpointError(this.path, `zip: no local header for ${entry.name} at offset ${at}`);
    const start = at + LOCAL_SIZE + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + entry.compressedSize > this.dataLimit) {
      throw new CheckpointError(
        this.path,
        `zip: data of ${entry.name} [${start}, ${start + entry.compressedSize}) runs past the central directory at ${this.dataLimit} (truncated?)`,
      );
    }
    this.dataStarts.set(entry.name, start);
    return start;
  }

  /** The whole (inflated) content of a small entry, CRC-checked; refused when over `maxBytes`. */
  async readEntry(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    if (entry.uncompressedSize > maxBytes || entry.compressedSize > maxBytes) {
      throw new CheckpointError(this.path, `zip: ${entry.name} has ${entry.uncompressedSize} bytes, over the ${maxBytes}-byte limit`);
    }
    const start = await this.dataOffset(entry);
    const raw = await readExact(this.fh, this.path, start, entry.compressedSize, `zip entry ${entry.name}`);
    let data: Uint8Array;
    if (entry.method === METHOD_STORED) {
      data = raw;
    } else if (entry.method === METHOD_DEFLATE) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (err) {
        throw new CheckpointError(this.path, `zip: cannot inflate ${entry.name}: ${(err as Error).message}`);
      }
    } else {
      throw new CheckpointError(this.path, `zip: ${entry.name} uses compression method ${entry.method} (expected 0 stored or 8 deflate)`);
    }
    if (data.length !== entry.uncompressedSize) {
      throw new CheckpointError(this.path, `zip: ${entry.name} has ${data.length} bytes, the directory says ${entry.uncompressedSize}`);
    }
    const crc = crc32(data) >>> 0;
    if (crc !== entry.crc32) {
      throw new CheckpointError(
        this.path,
        `zip: CRC-32 of ${entry.name} is ${hex(crc)}, the directory says ${hex(entry.crc32)} (corrupt file)`,
      );
    }
    return data;
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function parseCentralDirectory(cd: Uint8Array, count: number, path: string): Map<string, ZipEntry> {
  const dv = view(cd);
  const names = new TextDecoder('utf-8', { fatal: false });
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new CheckpointError(path, `zip: central directory entry ${i} at +${p} is malformed`);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let uncompressedSize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const disk = dv.getUint16(p + 34, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const end = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (end > cd.length) throw new CheckpointError(path, `zip: central directory entry ${i} runs past the directory`);
    const name = names.decode(cd.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen));
    if (flags & 1) throw new CheckpointError(path, `zip: ${name} is encrypted`);
    // zip64 extended information: the 8-byte values of the fields saturated at 0xFFFFFFFF, in order.
    const needUnc = uncompressedSize === 0xffffffff;
    const needComp = compressedSize === 0xffffffff;
    const needOff = localHeaderOffset === 0xffffffff;
    if (needUnc || needComp || needOff || disk === 0xffff) {
      let q = p + CENTRAL_SIZE + nameLen;
      const extraEnd = q + extraLen;
      let found = false;
      while (q + 4 <= extraEnd) {
        const id = dv.getUint16(q, true);
        const size = dv.getUint16(q + 2, true);
        if (q + 4 + size > extraEnd) break;
        if (id === 0x0001) {
          let r = q + 4;
          const next = (what: string): number => {
            if (r + 8 > q + 4 + size) throw new CheckpointError(path, `zip: zip64 extra field of ${name} lacks the ${what}`);
            const v = u64(dv, r, path, `${what} of ${name}`);
            r += 8;
            return v;
          };
          if (needUnc) uncompressedSize = next('uncompressed size');
          if (needComp) compressedSize = next('compressed size');
          if (needOff) localHeaderOffset = next('local header offset');
          found = true;
          break;
        }
        q += 4 + size;
      }
      if (!found) throw new CheckpointError(path, `zip: ${name} needs a zip64 extra field and has none`);
    }
    if (entries.has(name)) throw new CheckpointError(path, `zip: entry ${name} appears twice`);
    if (method === METHOD_STORED && compressedSize !== uncompressedSize) {
      throw new CheckpointError(path, `zip: stored entry ${name} claims ${uncompressedSize} bytes but holds ${compressedSize}`);
    }
    entries.set(name, { name, method, flags, crc32: crc, compressedSize, uncompressedSize, localHeaderOffset });
    p = end;
  }
  return entries;
}
