/**
 * Writes test/corpus/: broken inputs, each with the error it must produce (test/corpus/manifest.json),
 * all derived from the tiny fixture test/fixtures/tiny-g1. Deterministic: running it twice gives the
 * same bytes. Run: `npx tsx scripts/make-corpus.ts`; test/corpus.test.ts runs every entry.
 *
 *   checkpoint/<name>/  weight files; the test adds the base's config.json when the entry has none
 *   config/<name>/      a config.json; the test adds the base's weights
 *   model-dir/<name>/   an exported model directory (externalData 'always'), then broken
 *
 * `expect` is the regex (source) the error message must match; `expect: null` means the export succeeds,
 * with a warning matching `warning`. Model dirs also carry `expectOrt`, the onnxruntime-node error.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openCheckpoint } from '../src/export/checkpoint/index.js';
import type { CkptDType } from '../src/export/checkpoint/types.js';
import { bf16Bytes, encodeSafetensors, f16Bytes, f32Bytes, rawSafetensors, type TestTensor } from '../test/helpers/checkpoint-bytes.js';
import { exportModel } from '../src/export/index.js';
import { decodeModel, encodeModel } from '../src/onnx/proto.js';
import {
  PickleWriter,
  torchStateDictPickle,
  writeTorchCheckpoint,
  writeTorchZip,
  type TorchTensorSpec,
} from '../test/helpers/torch-checkpoint.js';

export type CorpusKind = 'checkpoint' | 'config' | 'model-dir';
export type CorpusBase = 'hf' | 'mamba_ssm';

export interface CorpusEntry {
  name: string;
  kind: CorpusKind;
  /** Directory of the entry, relative to test/corpus. */
  path: string;
  /** Fixture format whose missing files (config.json or weights) complete the entry. */
  base?: CorpusBase;
  /** Regex source the error must match; null: the export succeeds (with `warning`). */
  expect: string | null;
  warning?: string;
  /** model-dir only: regex source of the onnxruntime-node session-creation error. */
  expectOrt?: string;
  note: string;
}

export const ROOT = resolve(import.meta.dirname, '..');
export const CORPUS = join(ROOT, 'test/corpus');
export const FIXTURE = join(ROOT, 'test/fixtures/tiny-g1');
const entries: CorpusEntry[] = [];

interface BaseTensor {
  key: string;
  shape: number[];
  values: Float32Array;
}

async function readBase(base: CorpusBase): Promise<BaseTensor[]> {
  const { store } = await openCheckpoint(join(FIXTURE, base));
  const out: BaseTensor[] = [];
  for (const key of store.keys()) out.push({ key, shape: [...store.info(key)!.shape], values: await store.readFloat32(key) });
  await store.close();
  return out;
}

const BYTES: Partial<Record<CkptDType, (v: ArrayLike<number>) => Uint8Array>> = { F32: f32Bytes, F16: f16Bytes, BF16: bf16Bytes };
const encode = (ts: readonly BaseTensor[], dtype: CkptDType = 'F16'): TestTensor[] =>
  ts.map((t) => ({ key: t.key, dtype, shape: t.shape, bytes: BYTES[dtype]!(t.values) }));

function entryDir(kind: CorpusKind, name: string): string {
  const dir = join(CORPUS, kind, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function add(e: Omit<CorpusEntry, 'path'>, files: Record<string, Uint8Array | string>): void {
  const dir = entryDir(e.kind, e.name);
  for (const [f, data] of Object.entries(files)) writeFileSync(join(dir, f), data);
  entries.push({ ...e, path: `${e.kind}/${e.name}` });
}

const u8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const flipBit = (b: Uint8Array, at: number, bit: number): Uint8Array => {
  const c = b.slice();
  c[at]! ^= 1 << bit;
  return c;
};
const ST = 'model.safetensors';
const ckpt = (
  name: string,
  note: string,
  expect: string | null,
  files: Record<string, Uint8Array | string>,
  base: CorpusBase = 'hf',
  warning?: string,
): void => add({ name, kind: 'checkpoint', base, expect, ...(warning ? { warning } : {}), note }, files);

/** safetensors files: truncation, bit flips, header lies, overflowing/overlapping offsets, huge tensors. */
function safetensorsEntries(hf: BaseTensor[]): void {
  const full = readFileSync(join(FIXTURE, 'hf', ST));
  const headerLen = Number(new DataView(full.buffer, full.byteOffset).getBigUint64(0, true));
  ckpt('st-empty-file', 'a zero-byte model.safetensors', 'model\\.safetensors: file has 0 bytes', { [ST]: new Uint8Array(0) });
  ckpt('st-truncated-length-field', 'cut inside the 8-byte header length', 'file has 5 bytes.*truncated', { [ST]: full.subarray(0, 5) });
  ckpt(
    'st-truncated-header',
    'cut in the middle of the JSON header',
    `header length ${headerLen} exceeds the \\d+ bytes after the length field`,
    { [ST]: full.subarray(0, 8 + (headerLen >> 1)) },
  );
  ckpt(
    'st-truncated-data',
    'cut in the data region (last tensors incomplete)',
    'run past the data region of \\d+ bytes \\(truncated file\\?\\)',
    { [ST]: full.subarray(0, full.length - 3000) },
  );
  const st16 = encodeSafetensors(encode(hf));
  const text = new TextDecoder().decode(st16.subarray(8, 8 + 2000));
  ckpt(
    'st-bitflip-length-msb',
    "bit 7 of the length field's top byte flipped: a length near 2^63",
    'header length \\d+ exceeds the 100000000-byte limit',
    { [ST]: flipBit(st16, 7, 7) },
  );
  ckpt(
    'st-bitflip-length-byte2',
    'bit 1 of length byte 2 flipped: the header claims 128 KiB more than the file has',
    'header length \\d+ exceeds the \\d+ bytes after the length field',
    { [ST]: flipBit(st16, 2, 1) },
  );
  ckpt('st-bitflip-json-syntax', 'the opening brace of the header flipped to "z"', 'header is not valid UTF-8 JSON', {
    [ST]: flipBit(st16, 8, 0),
  }); // '{' 0x7b → 'z' 0x7a
  ckpt(
    'st-bitflip-utf8',
    'the "F" of the first dtype flipped to 0xc6, before an ASCII byte: invalid UTF-8',
    'header is not valid UTF-8 JSON',
    { [ST]: flipBit(st16, 8 + text.indexOf('"F16"') + 1, 7) },
  );
  ckpt('st-bitflip-dtype', '"F16" → "F06": an unknown dtype', `unknown dtype "F06"`, {
    [ST]: flipBit(st16, 8 + text.indexOf('"F16"') + 2, 0),
  });
  const off = text.indexOf('"data_offsets":[0,') + '"data_offsets":[0,'.length;
  ckpt(
    'st-bitflip-offset-digit',
    'a digit of the first end offset flipped: size no longer matches dtype × shape',
    'data_offsets \\[0, \\d+\\] hold \\d+ bytes, expected 4096',
    { [ST]: flipBit(st16, 8 + off, 0) },
  );
  ckpt('st-bitflip-key', '"backbone.embeddings" → "backbone.embeddinfs": the key goes missing', 'missing backbone\\.embeddings\\.weight', {
    [ST]: flipBit(st16, 8 + text.indexOf('embeddings') + 8, 0),
  });

  const one = (hdr: unknown, data = new Uint8Array(64), len?: bigint): Uint8Array => rawSafetensors(hdr, data, len);
  const t = (dtype: string, shape: unknown, offsets: unknown): unknown => ({ dtype, shape, data_offsets: offsets });
  ckpt('st-header-not-object', 'the header is a JSON array', 'safetensors header must be a JSON object', { [ST]: one([1, 2]) });
  ckpt('st-metadata-not-object', '__metadata__ is a string', '__metadata__ must be an object', { [ST]: one({ __metadata__: 'x' }) });
  ckpt('st-offsets-overflow-u64', 'end offset 2^64 (overflows u64 and any safe integer)', 'data_offsets must be integers 0 ≤ begin ≤ end', {
    [ST]: u8String(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551616]}}`),
  });
  ckpt('st-offsets-1e400', 'end offset 1e400 (parses as Infinity)', 'data_offsets must be integers', {
    [ST]: u8String(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1e400]}}`),
  });
  ckpt('st-offsets-negative', 'begin −16', 'data_offsets must be integers 0 ≤ begin ≤ end, got \\[-16,0\\]', {
    [ST]: one({ a: t('F32', [4], [-16, 0]) }),
  });
  ckpt('st-offsets-reversed', 'end before begin', 'got \\[32,16\\]', { [ST]: one({ a: t('F32', [4], [32, 16]) }) });
  ckpt('st-offsets-past-end', 'a tensor ending past the file', 'data_offsets \\[0, 4096\\] run past the data region of 64 bytes', {
    [ST]: one({ a: t('F32', [1024], [0, 4096]) }),
  });
  ckpt('st-offsets-overlap', 'two tensors share bytes 8..16', "tensors 'a' \\[0, 16\\] and 'b' \\[8, 24\\] overlap", {
    [ST]: one({ a: t('F32', [4], [0, 16]), b: t('F32', [4], [8, 24]) }),
  });
  ckpt(
    'st-huge-tensor-1e12',
    'F32 [1e6, 1e6]: 10^12 elements, 4 TB claimed by a 100-byte file',
    'has 1000000000000 elements; at most \\d+ are supported \\(refused before allocating\\)',
    { [ST]: one({ a: t('F32', [1e6, 1e6], [0, 4e12]) }) },
  );
  ckpt('st-huge-shape-product', 'shape [2^30, 2^30, 2^30]: the product overflows 2^53', 'refused before allocating', {
    [ST]: one({ a: t('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 64]) }),
  });
  ckpt('st-shape-negative', 'shape [-1, 16]', 'shape\\[0\\] must be a non-negative integer, got -1', {
    [ST]: one({ a: t('F32', [-1, 16], [0, 64]) }),
  });
  ckpt('st-shape-fraction', 'shape [2.5]', 'shape\\[0\\] must be a non-negative integer, got 2.5', {
    [ST]: one({ a: t('F32', [2.5], [0, 10]) }),
  });
  ckpt('st-shape-string', 'shape "16"', 'shape must be an array', { [ST]: one({ a: t('F32', '16', [0, 64]) }) });
  ckpt('st-dtype-unknown', 'dtype F8_E4M3 (not supported)', 'unknown dtype "F8_E4M3"', { [ST]: one({ a: t('F8_E4M3', [64], [0, 64]) }) });
  ckpt(
    'st-dtype-size-lie',
    'F32 [16] claims 64 bytes, the offsets give 32 (the bytes of F16 [16])',
    'hold 32 bytes, expected 64 \\(F32 \\[16\\]\\)',
    { [ST]: one({ a: t('F32', [16], [0, 32]) }) },
  );

  // whole checkpoints whose header is self-consistent but lies about the model
  const lie = (key: string, edit: (tt: TestTensor) => TestTensor): Uint8Array =>
    encodeSafetensors(encode(hf).map((tt) => (tt.key === key ? edit(tt) : tt)));
  ckpt(
    'st-shape-lie-transposed',
    'in_proj.weight stored as [32, 148] (same bytes, transposed shape)',
    'in_proj\\.weight: expected \\(148, 32\\), got \\(32, 148\\)',
    { [ST]: lie('backbone.layers.0.mixer.in_proj.weight', (tt) => ({ ...tt, shape: [32, 148] })) },
  );
  ckpt(
    'st-dtype-lie-int',
    'the embedding labelled I16 (same byte size as F16)',
    'backbone\\.embeddings\\.weight: expected a float dtype .* got I16',
    { [ST]: lie('backbone.embeddings.weight', (tt) => ({ ...tt, dtype: 'I16' })) },
  );
  ckpt(
    'st-dtype-lie-f32',
    'an F16 tensor labelled F32 with half the elements: shape no longer matches',
    'norm_f\\.weight: expected \\(32\\), got \\(16\\)',
    { [ST]: lie('backbone.norm_f.weight', (tt) => ({ ...tt, dtype: 'F32', shape: [16] })) },
  );

  // missing / extra tensors
  const without = (drop: (k: string) => boolean): Uint8Array => encodeSafetensors(encode(hf.filter((x) => !drop(x.key))));
  ckpt('missing-lm-head', 'untied config, no lm_head.weight', 'missing lm_head\\.weight', { [ST]: without((k) => k === 'lm_head.weight') });
  ckpt('missing-layer-1', 'every tensor of layer 1 absent', '9 missing[\\s\\S]*missing backbone\\.layers\\.1\\.norm\\.weight', {
    [ST]: without((k) => k.startsWith('backbone.layers.1.')),
  });
  ckpt('missing-everything', 'a valid, empty safetensors file', '21 missing', { [ST]: encodeSafetensors([]) });
  const renamed = encode(hf).map((tt) => (tt.key === 'backbone.embeddings.weight' ? { ...tt, key: 'backbone.embedding.weight' } : tt));
  ckpt(
    'missing-embedding-other-format',
    'the embedding under its mamba_ssm name in an HF checkpoint',
    'missing backbone\\.embeddings\\.weight \\(found backbone\\.embedding\\.weight: is this a mamba_ssm checkpoint\\?',
    { [ST]: encodeSafetensors(renamed) },
  );
  const extra = [
    ...encode(hf),
    { key: 'backbone.layers.0.mixer.extra_bias', dtype: 'F16' as const, shape: [4], bytes: f16Bytes([1, 2, 3, 4]) },
  ];
  ckpt(
    'extra-tensor',
    'one tensor the model does not use: exported, with a warning',
    null,
    { [ST]: encodeSafetensors(extra) },
    'hf',
    'ignoring 1 checkpoint tensor\\(s\\) the model does not use: backbone\\.layers\\.0\\.mixer\\.extra_bias',
  );
  const extraLayer = [
    ...encode(hf),
    ...encode(hf.filter((x) => x.key.startsWith('backbone.layers.1.'))).map((tt) => ({
      ...tt,
      key: tt.key.replace('layers.1.', 'layers.2.'),
    })),
  ];
  ckpt(
    'extra-layer',
    'a third layer beyond num_hidden_layers = 2: exported with a warning',
    null,
    { [ST]: encodeSafetensors(extraLayer) },
    'hf',
    'ignoring 9 checkpoint tensor\\(s\\).*backbone\\.layers\\.2\\.',
  );

  // non-finite weights
  const poison = (key: string, at: number, v: number, dtype: CkptDType): Uint8Array =>
    encodeSafetensors(
      encode(
        hf.map((x) => (x.key === key ? { ...x, values: Float32Array.from(x.values, (y, i) => (i === at ? v : y)) } : x)),
        dtype,
      ),
    );
  ckpt('nan-f16-inf-embedding', 'an F16 +Inf in the embedding', "'backbone\\.embeddings\\.weight' holds Infinity at flat index 5", {
    [ST]: poison('backbone.embeddings.weight', 5, Infinity, 'F16'),
  });
  ckpt('nan-bf16-lm-head', 'a BF16 NaN in lm_head', "'lm_head\\.weight' holds NaN at flat index 100", {
    [ST]: poison('lm_head.weight', 100, NaN, 'BF16'),
  });

  // sharded checkpoints
  const idx = (map: Record<string, string>): string => JSON.stringify({ metadata: {}, weight_map: map });
  ckpt(
    'index-path-traversal',
    'weight_map names ../../etc/passwd',
    'weight_map\\[\'a\'\\] must be a file name in the same directory, got "\\.\\./\\.\\./etc/passwd"',
    { 'model.safetensors.index.json': idx({ a: '../../etc/passwd' }) },
  );
  ckpt('index-missing-shard', 'weight_map names a shard that is not there', 'model-00002-of-00002\\.safetensors: cannot open', {
    'model.safetensors.index.json': idx({ a: 'model-00002-of-00002.safetensors' }),
  });
  const one1 = (key: string, v: number): TestTensor => ({ key, dtype: 'F32', shape: [1], bytes: f32Bytes([v]) });
  ckpt(
    'index-wrong-shard',
    'weight_map says tensor a is in shard 2, it is in shard 1',
    "weight_map says 'a' is in s2\\.safetensors, but it is in s1\\.safetensors",
    {
      'model.safetensors.index.json': idx({ a: 's2.safetensors', b: 's1.safetensors' }),
      's1.safetensors': encodeSafetensors([one1('a', 1), one1('b', 2)]),
      's2.safetensors': encodeSafetensors([]),
    },
  );
  ckpt('index-duplicate-key', 'the same tensor in two shards', "tensor 'a' is in two shards: s1\\.safetensors and s2\\.safetensors", {
    'model.safetensors.index.json': idx({ a: 's1.safetensors', b: 's2.safetensors' }),
    's1.safetensors': encodeSafetensors([one1('a', 1)]),
    's2.safetensors': encodeSafetensors([one1('a', 2), one1('b', 3)]),
  });
}

/** A safetensors file whose header JSON is given as text (for numbers JSON.stringify cannot write). */
function u8String(json: string): Uint8Array {
  const h = u8(json.padEnd(Math.ceil(json.length / 8) * 8, ' '));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
  const out = new Uint8Array(8 + h.length + 64);
  out.set(len);
  out.set(h, 8);
  return out;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** One small F32 tensor 'w' of 4 elements in storage '0': the checkpoint the pickle cases replace. */
const SMALL: { tensors: TorchTensorSpec[]; storages: Record<string, Uint8Array> } = {
  tensors: [{ key: 'w', storage: '0', numel: 4, size: [4] }],
  storages: { '0': new Uint8Array(16) },
};

/** The whole fixture as a torch.save of HalfStorages (one storage per tensor). */
function fullCheckpoint(base: readonly BaseTensor[], edit: (t: BaseTensor) => Float32Array = (t) => t.values) {
  const tensors: TorchTensorSpec[] = base.map((t, i) => ({
    key: t.key,
    storage: String(i),
    storageType: 'HalfStorage',
    numel: numel(t.shape),
    size: t.shape,
  }));
  const storages = Object.fromEntries(base.map((t, i) => [String(i), f16Bytes(edit(t))]));
  return { tensors, storages };
}

/** The torch.save (pytorch_model.bin) part: off-list globals, refused opcodes, lying storages and views, broken zips. */
async function torchEntries(base: readonly BaseTensor[]): Promise<void> {
  const add = async (
    name: string,
    note: string,
    expect: string | null,
    write: (file: string) => Promise<void>,
    warning?: string,
  ): Promise<void> => {
    await write(join(entryDir('checkpoint', name), 'pytorch_model.bin'));
    entries.push({
      name,
      kind: 'checkpoint',
      path: `checkpoint/${name}`,
      base: 'mamba_ssm',
      expect,
      ...(warning ? { warning } : {}),
      note,
    });
  };
  const ascii = (s: string): number[] => [...new TextEncoder().encode(s)];
  const pickleCase = (name: string, note: string, expect: string, pickle: Uint8Array): Promise<void> =>
    add(name, note, expect, (f) => writeTorchCheckpoint(f, { ...SMALL, pickle }));

  // globals off the allow-list, and allowed ones misused
  await pickleCase(
    'pickle-global-os-system',
    "GLOBAL os.system + REDUCE('echo pwned')",
    "pickle global 'os\\.system' is not allowed",
    new PickleWriter().raw(0x80, 2).global('os', 'system').str('echo pwned').raw(0x85, 0x52).done(),
  );
  const stackGlobal = new PickleWriter()
    .raw(0x80, 4, 0x8c, 8, ...ascii('builtins'), 0x94, 0x8c, 4, ...ascii('eval'), 0x94, 0x93)
    .raw(0x8c, 12, ...ascii('__import__()'), 0x85, 0x52)
    .done();
  await pickleCase(
    'pickle-stack-global-eval',
    'protocol 4 STACK_GLOBAL builtins.eval',
    "pickle global 'builtins\\.eval' is not allowed",
    stackGlobal,
  );
  await pickleCase(
    'pickle-global-load-from-bytes',
    'torch.storage._load_from_bytes (a nested torch.load)',
    "pickle global 'torch\\.storage\\._load_from_bytes' is not allowed",
    new PickleWriter().raw(0x80, 2).global('torch.storage', '_load_from_bytes').raw(0x43, 2, 0x80, 2, 0x85, 0x52).done(),
  );
  await pickleCase(
    'pickle-value-global-called',
    'torch.FloatStorage (allowed as a value) called with REDUCE',
    "'torch\\.FloatStorage' is allowed as a value but not as a call",
    new PickleWriter().raw(0x80, 2).global('torch', 'FloatStorage').raw(0x29, 0x52).done(),
  );
  await pickleCase(
    'pickle-allowed-global-bad-args',
    'collections.OrderedDict called with one argument',
    'REDUCE collections\\.OrderedDict: expected no arguments, got 1',
    new PickleWriter().raw(0x80, 2).global('collections', 'OrderedDict').raw(0x4b, 1, 0x85, 0x52).done(),
  );

  // opcodes
  await pickleCase(
    'pickle-unknown-opcode',
    'opcode 0xff after PROTO 2',
    'pickle opcode 0xff is not supported',
    Uint8Array.from([0x80, 2, 0xff, 0x2e]),
  );
  await pickleCase(
    'pickle-refused-opcode-inst',
    "INST 'os system' (a protocol-0 call)",
    'pickle opcode 0x69 \\(INST\\) is not supported',
    Uint8Array.from([0x80, 2, 0x28, 0x69, ...ascii('os\nsystem\n'), 0x2e]),
  );
  await pickleCase('pickle-protocol-6', 'PROTO 6', 'pickle protocol 6 is not supported', Uint8Array.from([0x80, 6, 0x7d, 0x2e]));
  const valid = torchStateDictPickle(SMALL.tensors);
  await pickleCase(
    'pickle-no-stop',
    'a valid state dict pickle without its STOP',
    'pickle ends early: need 1 bytes',
    valid.subarray(0, valid.length - 1),
  );
  await pickleCase(
    'pickle-string-length-lie',
    'BINUNICODE claiming 4 GiB',
    'pickle ends early: need 4294967280 bytes',
    Uint8Array.from([0x80, 2, 0x58, 0xf0, 0xff, 0xff, 0xff, 0x61, 0x2e]),
  );
  await pickleCase(
    'pickle-memo-missing',
    'BINGET 7 before any PUT',
    'pickle memo has no entry 7',
    Uint8Array.from([0x80, 2, 0x68, 7, 0x2e]),
  );
  await pickleCase('pickle-stack-underflow', 'TUPLE2 on an empty stack', 'pickle stack underflow', Uint8Array.from([0x80, 2, 0x86, 0x2e]));
  await pickleCase(
    'pickle-not-a-dict',
    'the root object is a list',
    'data\\.pkl holds PyList, expected a dict of tensors',
    Uint8Array.from([0x80, 2, 0x5d, 0x2e]),
  );
  await pickleCase(
    'pickle-value-not-tensor',
    "state_dict['w'] is an int",
    "state_dict\\['w'\\] is number, expected a tensor",
    new PickleWriter().raw(0x80, 2, 0x7d).str('w').int(3).raw(0x73).done(),
  );

  // storages and views that lie
  await add(
    'torch-storage-missing',
    'the pickle names storage 0, the archive has none',
    'storage entry archive/data/0 is missing from the archive',
    (f) => writeTorchCheckpoint(f, { tensors: SMALL.tensors, storages: {} }),
  );
  await add(
    'torch-storage-short',
    'numel 100, the storage entry holds 16 bytes',
    'storage archive/data/0 has 16 bytes, expected 400 \\(F32 × 100\\)',
    (f) => writeTorchCheckpoint(f, { tensors: [{ key: 'w', storage: '0', numel: 100, size: [100] }], storages: SMALL.storages }),
  );
  await add(
    'torch-view-past-storage',
    'offset 10, size [8] on a 12-element storage',
    'reaches element 17 of storage 0, which has 12',
    (f) =>
      writeTorchCheckpoint(f, {
        tensors: [{ key: 'w', storage: '0', numel: 12, offset: 10, size: [8] }],
        storages: { '0': new Uint8Array(48) },
      }),
  );
  await add(
    'torch-huge-numel',
    'a [1e6, 1e6] view on a storage claiming 10^12 elements',
    'has 1000000000000 elements; at most \\d+ are supported \\(refused before allocating\\)',
    (f) => writeTorchCheckpoint(f, { tensors: [{ key: 'w', storage: '0', numel: 1e12, size: [1e6, 1e6] }], storages: SMALL.storages }),
  );
  await add('torch-storage-key-traversal', "storage key '../../x'", 'persistent id has key "\\.\\./\\.\\./x"', (f) =>
    writeTorchCheckpoint(f, { tensors: [{ key: 'w', storage: '../../x', numel: 4, size: [4] }], storages: {} }),
  );

  // containers
  await add('torch-legacy-format', 'a bare pickle (torch.save before 1.6)', 'legacy torch\\.save format', async (f) =>
    writeFileSync(f, valid),
  );
  await add(
    'torch-not-zip',
    'text instead of a zip',
    'not a torch\\.save zip archive \\(expected magic 50 4b 03 04, got 68 65 6c 6c\\)',
    async (f) => writeFileSync(f, 'hello, not a checkpoint\n'),
  );
  await add('torch-zip-truncated', 'the zip cut before its end records', 'zip: no end-of-central-directory record', async (f) => {
    await writeTorchCheckpoint(f, SMALL);
    truncateSync(f, readFileSync(f).length - 120);
  });
  await add('torch-byteorder-big', "byteorder 'big'", "byteorder is 'big', only 'little' is supported", (f) =>
    writeTorchZip(f, [
      { name: 'archive/data.pkl', data: valid },
      { name: 'archive/byteorder', data: new TextEncoder().encode('big') },
      { name: 'archive/data/0', data: SMALL.storages['0']! },
    ]),
  );
  await add(
    'torch-storage-deflated',
    'a storage entry compressed with deflate',
    'storage archive/data/0 is compressed \\(method 8\\)',
    (f) =>
      writeTorchZip(f, [
        { name: 'archive/data.pkl', data: valid },
        { name: 'archive/data/0', data: SMALL.storages['0']!, deflate: true },
      ]),
  );
  await add(
    'torch-pickle-crc',
    'one bit of data.pkl flipped (the CRC no longer matches)',
    'zip: CRC-32 of archive/data\\.pkl is 0x[0-9a-f]{8}, the directory says 0x[0-9a-f]{8} \\(corrupt file\\)',
    async (f) => {
      await writeTorchCheckpoint(f, SMALL);
      const bytes = readFileSync(f);
      const at = bytes.indexOf(Buffer.from(valid.subarray(0, 16)));
      bytes[at + 8]! ^= 0x01;
      writeFileSync(f, bytes);
    },
  );

  // whole checkpoints
  await add(
    'torch-nan-weights',
    'a NaN in layer 1 A_log (HalfStorage)',
    "'backbone\\.layers\\.1\\.mixer\\.A_log' holds NaN at flat index 2",
    (f) =>
      writeTorchCheckpoint(
        f,
        fullCheckpoint(base, (t) =>
          t.key === 'backbone.layers.1.mixer.A_log' ? Float32Array.from(t.values, (v, i) => (i === 2 ? NaN : v)) : t.values,
        ),
      ),
  );
  await add(
    'torch-extra-shared-view',
    'an extra tensor viewing the embedding storage: exported, with a warning',
    null,
    (f) => {
      const ck = fullCheckpoint(base);
      const emb = ck.tensors.find((t) => t.key === 'backbone.embedding.weight')!;
      return writeTorchCheckpoint(f, {
        ...ck,
        tensors: [...ck.tensors, { ...emb, key: 'backbone.embedding.first_row', offset: 0, size: [32] }],
      });
    },
    'ignoring 1 checkpoint tensor\\(s\\) the model does not use: backbone\\.embedding\\.first_row',
  );
}

/** config.json variants: impossible sizes, NaN / Infinity where they cannot be, unknown model types. */
function configEntries(): void {
  const hf = readFileSync(join(FIXTURE, 'hf/config.json'), 'utf8');
  const ssm = readFileSync(join(FIXTURE, 'mamba_ssm/config.json'), 'utf8');
  const cfg = (name: string, note: string, expect: string, text: string, base: CorpusBase = 'hf'): void =>
    add({ name, kind: 'config', base, expect, note }, { 'config.json': text });
  /** The base text with `"key": value` replaced by a literal (so that bare NaN / Infinity can be written). */
  const set = (text: string, key: string, literal: string): string => {
    const re = new RegExp(`("${key}":\\s*)(\\[[^\\]]*\\]|[^,\\n]+)`);
    if (!re.test(text)) throw new Error(`make-corpus: no "${key}" in the base config`);
    return text.replace(re, `$1${literal}`);
  };
  cfg('hidden-size-zero', 'hidden_size 0', '"hidden_size": expected a positive integer, got 0', set(hf, 'hidden_size', '0'));
  cfg('hidden-size-negative', 'hidden_size −32', '"hidden_size": expected a positive integer, got -32', set(hf, 'hidden_size', '-32'));
  cfg('hidden-size-fraction', 'hidden_size 32.5', '"hidden_size": expected a positive integer, got 32.5', set(hf, 'hidden_size', '32.5'));
  cfg('hidden-size-string', 'hidden_size "32"', '"hidden_size": expected a positive integer, got "32"', set(hf, 'hidden_size', '"32"'));
  cfg(
    'hidden-size-huge',
    'hidden_size 2^40 with a consistent num_heads: a valid config no checkpoint can match',
    '"hidden_size": expected|embeddings\\.weight: expected \\(64, 1099511627776\\), got \\(64, 32\\)',
    set(set(hf, 'hidden_size', String(2 ** 40)), 'num_heads', String(2 ** 37)),
  );
  cfg('vocab-size-1e300', 'vocab_size 1e300', '"vocab_size": expected (a positive integer|at most)', set(hf, 'vocab_size', '1e300'));
  cfg(
    'head-dim-not-divisor',
    'head_dim 7 does not divide expand × hidden_size = 64',
    '"head_dim": expected a divisor of d_ssm = 64',
    set(hf, 'head_dim', '7'),
  );
  cfg(
    'n-groups-not-divisor',
    'n_groups 3 does not divide 4 heads',
    '"n_groups": expected a divisor of the 4 heads',
    set(hf, 'n_groups', '3'),
  );
  cfg(
    'layers-infinity',
    'num_hidden_layers Infinity',
    '"num_hidden_layers": expected a positive integer, got Infinity',
    set(hf, 'num_hidden_layers', 'Infinity'),
  );
  cfg(
    'layers-nan',
    'num_hidden_layers NaN',
    '"num_hidden_layers": expected a positive integer, got NaN',
    set(hf, 'num_hidden_layers', 'NaN'),
  );
  cfg('expand-infinity', 'expand Infinity', '"expand": expected a positive number, got Infinity', set(hf, 'expand', 'Infinity'));
  cfg(
    'expand-nan-float-object',
    'expand {"__float__": "NaN"} (HF 5.x form)',
    '"expand": expected a positive number, got NaN',
    set(hf, 'expand', '{"__float__": "NaN"}'),
  );
  cfg(
    'eps-nan',
    'layer_norm_epsilon NaN',
    '"layer_norm_epsilon": expected a positive finite number, got NaN',
    set(hf, 'layer_norm_epsilon', 'NaN'),
  );
  cfg(
    'eps-negative-infinity',
    'layer_norm_epsilon -Infinity',
    '"layer_norm_epsilon": expected a positive finite number, got -Infinity',
    set(hf, 'layer_norm_epsilon', '-Infinity'),
  );
  cfg('dt-limit-nan', 'time_step_limit [NaN, 1]', '"time_step_limit": expected \\[lo, hi\\]', set(hf, 'time_step_limit', '[NaN, 1.0]'));
  cfg(
    'dt-limit-inf-inf',
    'time_step_limit [Infinity, Infinity]',
    '"time_step_limit": expected a finite lower bound ≥ 0, got Infinity',
    set(hf, 'time_step_limit', '[Infinity, Infinity]'),
  );
  cfg(
    'dt-limit-reversed',
    'time_step_limit [0.5, 0.1]',
    '"time_step_limit": expected lo ≤ hi, got \\[0.5, 0.1\\]',
    set(hf, 'time_step_limit', '[0.5, 0.1]'),
  );
  cfg(
    'float-object-bad-word',
    '{"__float__": "Inf"} is not a float word',
    'expected \\{"__float__": "Infinity" \\| "-Infinity" \\| "NaN"\\}, got \\{"__float__":"Inf"\\}',
    set(hf, 'chunk_size', '{"__float__": "Inf"}'),
  );
  cfg(
    'eos-out-of-vocab',
    'eos_token_id 64 with vocab_size 64',
    '"eos_token_id": expected a token id in \\[0, 64\\), got 64',
    set(hf, 'eos_token_id', '64'),
  );
  cfg(
    'model-type-mamba1',
    'model_type "mamba" (Mamba-1)',
    '"model_type": expected "mamba2" or "bamba", got "mamba"',
    set(hf, 'model_type', '"mamba"'),
  );
  cfg(
    'model-type-hybrid',
    'model_type "zamba2" (a hybrid family not supported)',
    'got "zamba2": hybrid models are not supported yet',
    set(hf, 'model_type', '"zamba2"'),
  );
  cfg('model-type-number', 'model_type 2', '"model_type": expected "mamba2" or "bamba", got 2', set(hf, 'model_type', '2'));
  cfg(
    'model-type-absent',
    'no model_type beside model.safetensors',
    '"model_type": expected "mamba2" or "bamba", got nothing \\(missing\\)',
    hf.replace(/\s*"model_type": "mamba2",/, ''),
  );
  cfg('hidden-act-gelu', 'hidden_act gelu', '"hidden_act": expected "silu", got "gelu"', set(hf, 'hidden_act', '"gelu"'));
  cfg('json-trailing-comma', 'a trailing comma', 'config\\.json: invalid JSON', hf.replace(/\n}\s*$/, ',\n}\n'));
  cfg('json-array', 'the config is an array', 'config\\.json: expected a JSON object, got \\[', '[1, 2, 3]\n');
  cfg('json-empty', 'an empty file', 'config\\.json: invalid JSON', '');
  cfg(
    'json-deep-nesting',
    '10^4 nested arrays (exhausts the stack of the recursive reviver)',
    'config\\.json: invalid JSON: Maximum call stack size exceeded|does not match the config',
    `{"model_type": "mamba2", "x": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
  );
  cfg(
    'ssm-layer-mamba1',
    'mamba_ssm config with ssm_cfg.layer Mamba1',
    '"ssm_cfg\\.layer": expected "Mamba2", got "Mamba1"',
    set(ssm, 'layer', '"Mamba1"'),
    'mamba_ssm',
  );
  cfg(
    'ssm-d-intermediate',
    'mamba_ssm config with an MLP (d_intermediate 128) but no MLP tensors',
    'missing backbone\\.layers\\.0\\.norm2\\.weight',
    set(ssm, 'd_intermediate', '128'),
    'mamba_ssm',
  );
  cfg(
    'ssm-pad-multiple-zero',
    'pad_vocab_size_multiple 0',
    '"pad_vocab_size_multiple": expected a positive integer, got 0',
    set(ssm, 'pad_vocab_size_multiple', '0'),
    'mamba_ssm',
  );
  cfg(
    'ssm-headdim-nan',
    'ssm_cfg.headdim NaN',
    '"ssm_cfg\\.headdim": expected a positive integer, got NaN',
    set(ssm, 'headdim', 'NaN'),
    'mamba_ssm',
  );
  cfg(
    'ssm-hf-config',
    'an HF config.json beside pytorch_model.bin',
    '"model_type": expected none in a mamba_ssm config\\.json, got "mamba2"',
    hf,
    'mamba_ssm',
  );
}

/** Exported model directories (externalData 'always') with a broken data file or model file. */
async function modelDirEntries(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'm2o-corpus-'));
  try {
    const good = join(tmp, 'good');
    await exportModel({ checkpointDir: join(FIXTURE, 'hf') }, { outDir: good, externalData: 'always' });
    // another model's data file: the same fixture cut to one layer
    const oneLayer = join(tmp, 'one-layer');
    mkdirSync(oneLayer);
    const hf = await readBase('hf');
    writeFileSync(
      join(oneLayer, ST),
      encodeSafetensors(
        encode(
          hf.filter((t) => !t.key.startsWith('backbone.layers.1.')),
          'F32',
        ),
      ),
    );
    writeFileSync(
      join(oneLayer, 'config.json'),
      readFileSync(join(FIXTURE, 'hf/config.json'), 'utf8').replace(/"num_hidden_layers": 2/, '"num_hidden_layers": 1'),
    );
    const other = join(tmp, 'other');
    await exportModel({ checkpointDir: oneLayer }, { outDir: other, externalData: 'always' });

    const md = (name: string, note: string, expect: string, expectOrt: string, edit: (dir: string) => void): void => {
      const dir = entryDir('model-dir', name);
      cpSync(good, dir, { recursive: true });
      edit(dir);
      entries.push({ name, kind: 'model-dir', path: `model-dir/${name}`, expect, expectOrt, note });
    };
    const DATA = 'model.onnx.data';
    md(
      'data-missing',
      'model.onnx.data deleted',
      "external data file '[^']*model\\.onnx\\.data' \\(tensor '[^']+'\\) is missing",
      'External data path does not exist: "[^"]*model\\.onnx\\.data"',
      (d) => rmSync(join(d, DATA)),
    );
    md(
      'data-truncated',
      'model.onnx.data cut to 5000 bytes',
      "external data file '[^']*model\\.onnx\\.data' is truncated: tensor '[^']+' needs bytes \\d+\\.\\.\\d+, the file has 5000",
      'External initializer: .* given file_length: 5000 are out of bounds',
      (d) => truncateSync(join(d, DATA), 5000),
    );
    md(
      'data-swapped',
      "model.onnx.data replaced by a one-layer model's data file (shorter)",
      "external data file '[^']*model\\.onnx\\.data' is truncated: tensor 'backbone\\.layers\\.1\\.",
      'External initializer: backbone\\.layers\\.1\\..* out of bounds',
      (d) => cpSync(join(other, DATA), join(d, DATA)),
    );
    md(
      'data-is-directory',
      'model.onnx.data is a directory',
      "external data file '[^']*model\\.onnx\\.data' \\(tensor '[^']+'\\) is not a file",
      'Is a directory.*model\\.onnx\\.data',
      (d) => {
        rmSync(join(d, DATA));
        mkdirSync(join(d, DATA));
        writeFileSync(join(d, DATA, 'README'), 'a directory where the external data file should be\n');
      },
    );
    md(
      'location-escapes',
      "every external tensor's location rewritten to ../model.onnx.data",
      "external location '\\.\\./model\\.onnx\\.data' must be a path inside the model's directory",
      'External data path escapes model directory\\. External data path: "\\.\\./model\\.onnx\\.data"',
      (d) => {
        const model = decodeModel(readFileSync(join(d, 'model.onnx')));
        for (const t of model.graph!.initializer) for (const e of t.externalData) if (e.key === 'location') e.value = `../${DATA}`;
        writeFileSync(join(d, 'model.onnx'), encodeModel(model));
        rmSync(join(d, DATA));
      },
    );
    md(
      'model-truncated',
      'model.onnx cut to 30000 bytes',
      "model\\.onnx': decodeModel: not an ONNX ModelProto",
      'Protobuf parsing failed|Load model .* failed',
      (d) => {
        truncateSync(join(d, 'model.onnx'), 30_000);
        rmSync(join(d, DATA));
      },
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const README = `# Bad-input corpus

Generated by \`npx tsx scripts/make-corpus.ts\` from test/fixtures/tiny-g1 (do not edit by hand; the
script rewrites this directory). \`manifest.json\` lists every entry with the error it must produce;
test/corpus.test.ts runs them all, and test/fuzz/readers.ts uses the files as fuzzing seeds.

- \`checkpoint/<name>/\`: weight files (model.safetensors, shards, pytorch_model.bin); the test adds
  the base fixture's config.json and exports the directory with exportModel.
- \`config/<name>/config.json\`: the test adds the base fixture's weights and exports.
- \`model-dir/<name>/\`: an exported model directory (external data), then broken; loaded with
  loadModelSummary and with an onnxruntime-node session.

\`expect\` is a regular expression the error message must match (\`null\`: the export succeeds, with
a warning matching \`warning\`); \`expectOrt\` is onnxruntime-node's error for model directories.
`;

export async function makeCorpus(): Promise<CorpusEntry[]> {
  entries.length = 0;
  rmSync(CORPUS, { recursive: true, force: true });
  mkdirSync(CORPUS, { recursive: true });
  const hf = await readBase('hf');
  safetensorsEntries(hf);
  await torchEntries(await readBase('mamba_ssm'));
  configEntries();
  await modelDirEntries();
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const manifest = { generator: 'scripts/make-corpus.ts', base: 'test/fixtures/tiny-g1', entries };
  writeFileSync(join(CORPUS, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(CORPUS, 'README.md'), README);
  return entries;
}

function corpusBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    n += e.isDirectory() ? corpusBytes(join(dir, e.name)) : readFileSync(join(dir, e.name)).length;
  return n;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const list = await makeCorpus();
  const bytes = corpusBytes(CORPUS);
  process.stdout.write(`test/corpus: ${list.length} entries, ${bytes} bytes\n`);
}
