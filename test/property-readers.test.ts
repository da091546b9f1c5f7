/**
 * Property-based tests of the loaders' parsers (fast-check; seed fixed, FC_SEED=n to explore):
 *   - safetensors: random valid files round-trip through the test writer and the reader; random
 *     headers and randomly mutated files give a CheckpointError, never another exception;
 *   - pickle / torch.save: random bytes, random opcode streams and mutated torch pickles → CheckpointError only;
 *   - config: random JSON → ConfigError or a config whose sizes are consistent; parseConfigText
 *     round-trips JSON and Python's bare Infinity / NaN.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PyDict, unpickle, type PickleValue } from '../src/export/checkpoint/pickle.js';
import { openSafetensors, validateSafetensorsHeader } from '../src/export/checkpoint/safetensors.js';
import { DTYPE_BYTES, halfToFloat, isFloatDType } from '../src/export/checkpoint/tensor-bytes.js';
import { encodeSafetensors, type TestTensor } from './helpers/checkpoint-bytes.js';
import { torchStateDictPickle, writeTorchCheckpoint, type TorchTensorSpec } from './helpers/torch-checkpoint.js';
import { openTorchCheckpoint } from '../src/export/checkpoint/torch.js';
import { CheckpointError, type CkptDType, type TensorStore } from '../src/export/checkpoint/types.js';
import { ConfigError, configFromJson, detectConfigFormat, parseConfigText } from '../src/export/config.js';
import type { Mamba2Config } from '../src/package/config.js';

const FC_SEED = Number(process.env.FC_SEED ?? 20_260_601);
const tmp = mkdtempSync(join(tmpdir(), 'm2o-propr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const tmpFile = (bytes: Uint8Array): string => {
  const f = join(tmp, `f${files++}`);
  writeFileSync(f, bytes);
  return f;
};

/** Runs `fn`; an exception other than `type` fails the property with its stack. */
async function onlyThrows(type: typeof CheckpointError | typeof ConfigError, what: string, fn: () => unknown): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (e) {
    if (e instanceof type) return false;
    throw new Error(`${what}: expected only ${type.name}, got ${(e as Error).stack ?? String(e)}`);
  }
}

/** Opens a store and reads every tensor; each read must give dtype × shape elements. */
async function readAll(open: () => Promise<TensorStore>): Promise<void> {
  const store = await open();
  try {
    for (const k of store.keys()) {
      const info = store.info(k)!;
      try {
        const a = await store.readFloat32(k);
        expect(a.length).toBe(info.shape.reduce((x, y) => x * y, 1));
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
      }
    }
  } finally {
    await store.close();
  }
}

// ---- mutations --------------------------------------------------------------------------------

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; v: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), v: fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x22, 0x5b, 0x2c, 0x30, 0x39) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);
/** Applies mutations; positions are taken modulo the length, biased to the first 256 bytes (headers). */
function mutate(src: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = src.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % 3 === 0 ? m.at % b.length : m.at % Math.min(b.length, 256);
    if (m.kind === 'flip') b[at]! ^= 1 << m.bit;
    else if (m.kind === 'set') b[at] = m.v;
    else if (m.kind === 'cut') b = b.slice(0, at);
    else b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
  }
  return b;
}

// ---- safetensors --------------------------------------------------------------------------------

const DTYPES: CkptDType[] = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];
const tensorList: fc.Arbitrary<TestTensor[]> = fc
  .uniqueArray(
    fc.tuple(
      fc.string({ minLength: 1, maxLength: 10, unit: 'grapheme' }),
      fc.constantFrom(...DTYPES),
      fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    ),
    {
      maxLength: 5,
      selector: (t) => t[0],
    },
  )
  .map((ts) => ts.filter(([k]) => k !== '__metadata__'))
  .chain((ts) =>
    fc.tuple(
      ...ts.map(([key, dtype, shape]) => {
        const n = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
        return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes): TestTensor => ({ key, dtype, shape, bytes }));
      }),
    ),
  );
const metadata = fc.option(
  fc.dictionary(
    fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'),
    fc.string({ maxLength: 8 }),
    { maxKeys: 3 },
  ),
  { nil: undefined },
);

/** What readFloat32 must return for a float tensor's raw bytes. */
function expectedFloats(t: TestTensor): Float32Array {
  const b = t.bytes.slice().buffer;
  if (t.dtype === 'F32') return new Float32Array(b);
  if (t.dtype === 'F64') return Float32Array.from(new Float64Array(b));
  const u16 = new Uint16Array(b);
  if (t.dtype === 'F16') return Float32Array.from(u16, halfToFloat);
  return new Float32Array(Uint32Array.from(u16, (u) => u << 16).buffer);
}

describe('safetensors properties', () => {
  it('random valid files round-trip: keys, dtypes, shapes, metadata and values', async () => {
    await fc.assert(
      fc.asyncProperty(tensorList, metadata, async (ts, meta) => {
        const st = await openSafetensors(tmpFile(encodeSafetensors(ts, meta)));
        try {
          expect(st.keys()).toEqual(ts.map((t) => t.key).sort());
          expect(st.metadata).toEqual(meta ?? {});
          for (const t of ts) {
            expect(st.info(t.key)).toEqual({ key: t.key, dtype: t.dtype, shape: t.shape });
            if (!isFloatDType(t.dtype)) {
              await expect(st.readFloat32(t.key)).rejects.toThrow(CheckpointError);
              continue;
            }
            const got = await st.readFloat32(t.key);
            const want = expectedFloats(t);
            expect(got.length).toBe(want.length);
            for (let i = 0; i < got.length; i++)
              if (!Object.is(got[i], want[i])) expect(`${t.key}[${i}] = ${got[i]}`).toBe(`${t.key}[${i}] = ${want[i]}`);
          }
        } finally {
          await st.close();
        }
      }),
      { seed: FC_SEED, numRuns: 150 },
    );
  });

  it('random headers: CheckpointError, or entries inside the data region, sized by dtype × shape, not overlapping', () => {
    const num = fc.oneof(fc.integer({ min: -4, max: 80 }), fc.constantFrom(2 ** 53, 2 ** 64, 1e300, -0, 0.5, NaN, Infinity));
    const entry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.jsonValue()),
        shape: fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()),
        data_offsets: fc.oneof(fc.tuple(num, num), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const header = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(entry, entry, fc.jsonValue()), { maxKeys: 4 }),
    );
    let valid = 0;
    fc.assert(
      fc.property(header, fc.integer({ min: 0, max: 200 }), (h, size) => {
        let parsed: ReturnType<typeof validateSafetensorsHeader>;
        try {
          parsed = validateSafetensorsHeader(h, size, 'h');
        } catch (e) {
          if (e instanceof CheckpointError) return;
          throw e;
        }
        valid++;
        const spans = [...parsed.entries.values()]
          .map((e) => {
            expect(e.end).toBeLessThanOrEqual(size);
            expect(e.end - e.begin).toBe(e.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype]);
            return e;
          })
          .filter((e) => e.end > e.begin)
          .sort((a, b) => a.begin - b.begin);
        spans.forEach((s, i) => i > 0 && expect(s.begin).toBeGreaterThanOrEqual(spans[i - 1]!.end));
      }),
      { seed: FC_SEED, numRuns: 3000 },
    );
    expect(valid).toBeGreaterThan(50);
  });

  it('randomly mutated files: CheckpointError or readable, never another exception', async () => {
    await fc.assert(
      fc.asyncProperty(tensorList, fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ts, ms) => {
        const f = tmpFile(mutate(encodeSafetensors(ts), ms));
        await onlyThrows(CheckpointError, 'safetensors', () => readAll(() => openSafetensors(f)));
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });
});

// ---- pickle and torch.save ------------------------------------------------------------------------

const PICKLE_OPTS = {
  path: 'p',
  what: 'data.pkl',
  globals: new Map([
    ['collections.OrderedDict', (): PickleValue => new PyDict()],
    ['torch.FloatStorage', undefined],
  ]),
  persistentLoad: (pid: PickleValue): PickleValue => pid,
};
/** One opcode with plausible arguments (valid or not). */
const opcode: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom<number[]>(
    [0x28],
    [0x7d],
    [0x5d],
    [0x29],
    [0x74],
    [0x85],
    [0x86],
    [0x87],
    [0x4e],
    [0x88],
    [0x89],
    [0x73],
    [0x75],
    [0x61],
    [0x65],
    [0x52],
    [0x81],
    [0x62],
    [0x51],
    [0x30],
    [0x31],
    [0x32],
    [0x94],
    [0x93],
    [0x2e],
    [0x80, 2],
    [0x80, 9],
  ),
  fc.tuple(fc.constantFrom(0x4b, 0x71, 0x68, 0x43, 0x8c), fc.integer({ min: 0, max: 300 })).map(([o, n]) => [o, n & 0xff]),
  fc
    .tuple(fc.constantFrom(0x4a, 0x72, 0x6a, 0x58, 0x42), fc.nat())
    .map(([o, n]) => [o, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]),
  fc
    .constantFrom('collections\nOrderedDict\n', 'torch\nFloatStorage\n', 'os\nsystem\n', 'x')
    .map((s) => [0x63, ...new TextEncoder().encode(s)]),
  fc.string({ maxLength: 8 }).map((s) => {
    const b = [...new TextEncoder().encode(s)];
    return [0x8c, b.length, ...b];
  }),
  fc.integer({ min: 0, max: 255 }).map((b) => [b]),
);
const smallTorch = fc
  .array(fc.tuple(fc.constantFrom('a', 'b.weight', 'c'), fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 })), {
    minLength: 1,
    maxLength: 3,
  })
  .map((ts): TorchTensorSpec[] =>
    ts.map(([k, size], i) => ({ key: `${k}${i}`, storage: String(i), numel: size.reduce((a, b) => a * b, 1), size })),
  );

describe('pickle properties', () => {
  it('random bytes and random opcode streams: CheckpointError or a value, never another exception', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 48 }),
          fc.array(opcode, { maxLength: 30 }).map((ops) => Uint8Array.from([0x80, 2, ...ops.flat()])),
        ),
        async (bytes) => {
          await onlyThrows(CheckpointError, 'unpickle', () => unpickle(bytes, PICKLE_OPTS));
        },
      ),
      { seed: FC_SEED, numRuns: 5000 },
    );
  });

  it('mutated torch.save pickles: CheckpointError or readable, never another exception', async () => {
    let opened = 0;
    await fc.assert(
      fc.asyncProperty(smallTorch, fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ts, ms) => {
        const f = join(tmp, `t${files++}.bin`);
        const storages = Object.fromEntries(ts.map((t) => [t.storage, new Uint8Array(t.numel * 4).fill(0x3f)]));
        await writeTorchCheckpoint(f, {
          tensors: ts,
          storages,
          pickle: mutate(torchStateDictPickle(ts, { ordered: true, metadata: true }), ms),
        });
        if (await onlyThrows(CheckpointError, 'torch', () => readAll(() => openTorchCheckpoint(f)))) opened++;
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
    expect(opened).toBeGreaterThan(0);
  });
});

// ---- config ------------------------------------------------------------------------------------

const HF_BASE = {
  model_type: 'mamba2',
  hidden_size: 32,
  num_hidden_layers: 2,
  vocab_size: 64,
  state_size: 8,
  conv_kernel: 4,
  expand: 2,
  head_dim: 16,
  num_heads: 4,
  n_groups: 1,
  chunk_size: 8,
  time_step_limit: [0, Infinity],
  layer_norm_epsilon: 1e-5,
};
const SSM_BASE = {
  d_model: 32,
  n_layer: 2,
  vocab_size: 64,
  ssm_cfg: { layer: 'Mamba2', d_state: 8, headdim: 16, ngroups: 1, chunk_size: 8 },
};
const oddValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(0, -1, 0.5, 3, 7, 2 ** 31, 1e300, NaN, Infinity, -Infinity, null, '8', [0, 1], [1, 0], true),
);

/** The size relations every accepted config must satisfy. */
function checkInvariants(c: Mamba2Config): void {
  for (const k of [
    'dModel',
    'nLayer',
    'vocabSize',
    'dState',
    'dConv',
    'headDim',
    'nHeads',
    'nGroups',
    'chunkSize',
    'dInner',
    'dSsm',
  ] as const) {
    expect(Number.isInteger(c[k]) && c[k] > 0, `${k} = ${c[k]}`).toBe(true);
  }
  expect(c.nHeads * c.headDim).toBe(c.dSsm);
  expect(c.dSsm).toBeLessThanOrEqual(c.dInner);
  expect(c.nHeads % c.nGroups).toBe(0);
  expect(c.realVocabSize).toBeLessThanOrEqual(c.vocabSize);
  expect(c.dtLimit[0] >= 0 && c.dtLimit[0] <= c.dtLimit[1]).toBe(true);
  expect(c.normEps > 0 && Number.isFinite(c.normEps)).toBe(true);
}

describe('config properties', () => {
  it('random JSON and mutated HF / mamba_ssm configs: ConfigError or a consistent config', async () => {
    const hf = fc
      .dictionary(fc.constantFrom(...Object.keys(HF_BASE), 'hidden_act', 'eos_token_id'), oddValue, { maxKeys: 3 })
      .map((d) => ({ ...HF_BASE, ...d }));
    const ssm = fc
      .tuple(
        fc.dictionary(fc.constantFrom('d_model', 'n_layer', 'vocab_size', 'pad_vocab_size_multiple', 'ssm_cfg', 'model_type'), oddValue, {
          maxKeys: 2,
        }),
        fc.dictionary(fc.constantFrom('layer', 'd_state', 'headdim', 'ngroups', 'expand', 'd_ssm', 'dt_limit'), oddValue, { maxKeys: 2 }),
      )
      .map(([top, inner]) => ({ ...SSM_BASE, ssm_cfg: { ...SSM_BASE.ssm_cfg, ...inner }, ...top }));
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), hf, ssm), async (raw) => {
        let c: Mamba2Config | undefined;
        await onlyThrows(ConfigError, 'config', () => {
          c = configFromJson(raw, detectConfigFormat(raw), 'c.json');
        });
        if (c) {
          accepted++;
          checkInvariants(c);
        }
      }),
      { seed: FC_SEED, numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });

  it('parseConfigText: JSON round-trips, bare Infinity / NaN parse, other text is a ConfigError', async () => {
    const noFloatKey = (v: unknown): boolean => JSON.stringify(v)?.includes('"__float__"') !== true;
    fc.assert(
      fc.property(fc.jsonValue().filter(noFloatKey), (v) => {
        expect(parseConfigText(JSON.stringify(v), 'c.json')).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { seed: FC_SEED, numRuns: 1000 },
    );
    const word = (x: number): string =>
      Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : JSON.stringify(x);
    fc.assert(
      fc.property(fc.array(fc.double()), (xs) => {
        const got = parseConfigText(`{"time_step_limit": [${xs.map(word).join(', ')}], "s": "NaN Infinity"}`, 'c.json') as {
          time_step_limit: number[];
          s: string;
        };
        expect(got.s).toBe('NaN Infinity');
        got.time_step_limit.forEach((x, i) => expect(Object.is(x, xs[i]) || (x === 0 && xs[i] === 0)).toBe(true));
      }),
      { seed: FC_SEED, numRuns: 500 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), async (text) => {
        await onlyThrows(ConfigError, 'parseConfigText', () => parseConfigText(text, 'c.json'));
      }),
      { seed: FC_SEED, numRuns: 3000 },
    );
  });
});
