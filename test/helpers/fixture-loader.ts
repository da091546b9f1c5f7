/**
 * Loads a reference fixture directory (layout of ../shared/fixtures and test/fixtures, see
 * test/reference/README.md) for tests: the HF config as a Mamba2Config, the weights, reference.json.
 * The config parser here is deliberately tiny and separate from src/export/config.ts, so that the
 * reference model's tests do not depend on the exporter's code.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Mamba2Config } from '../../src/package/config.js';
import { openSafetensors } from '../../src/export/checkpoint/safetensors.js';
import { openTorchCheckpoint } from '../../src/export/checkpoint/torch.js';
import type { TensorStore } from '../../src/export/checkpoint/types.js';
import type { Weights } from '../../src/reference/mixer.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** ../shared/fixtures beside the checkout (override: MAMBA2_SHARED_FIXTURES). */
export const SHARED_FIXTURES = process.env['MAMBA2_SHARED_FIXTURES'] ?? resolve(REPO_ROOT, '..', 'shared', 'fixtures');
/** The project's own fixtures, made by test/reference/make_fixtures.py. */
export const OWN_FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

export interface FixtureCase {
  readonly input_ids: number[][];
  readonly logits: number[][][];
}

export interface ReferenceJson {
  readonly spec: string;
  readonly cases: FixtureCase[];
  readonly greedy: {
    readonly input_ids: number[][];
    readonly output_ids: number[][];
    readonly eos_token_id: number;
    readonly real_vocab_size?: number;
  };
  readonly gated_norm?: string;
  /** Own fixtures only: per-layer states after case `case_index`, conv [1,C,K−1], ssm [1,H,P,N]. */
  readonly final_states?: {
    readonly case_index: number;
    readonly conv_state: number[][][][];
    readonly ssm_state: number[][][][][];
  };
}

export interface Fixture {
  readonly dir: string;
  readonly config: Mamba2Config;
  readonly weights: Weights;
  readonly reference: ReferenceJson;
}

/** JSON with bare Infinity / NaN (older HF files) accepted. */
export function parseLooseJson(text: string): unknown {
  return JSON.parse(text.replace(/(?<=[\s,[:])-?(Infinity|NaN)(?=\s*[,\]}])/g, (m) => JSON.stringify({ __float__: m })));
}

function num(v: unknown, key: string, file: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && '__float__' in v) {
    const s = (v as { __float__: unknown }).__float__;
    if (typeof s === 'string') return Number(s);
  }
  throw new TypeError(`${file}: ${key}: expected a number, got ${JSON.stringify(v)}`);
}

/** HF `config.json` of a Mamba2ForCausalLM → Mamba2Config (no d_mlp, D per head). */
export function configFromHf(raw: Record<string, unknown>, file: string): Mamba2Config {
  const n = (key: string, dflt?: number): number => {
    const v = raw[key];
    if (v === undefined && dflt !== undefined) return dflt;
    return num(v, key, file);
  };
  const dModel = n('hidden_size');
  const expand = n('expand', 2);
  const dInner = expand * dModel;
  const nHeads = n('num_heads');
  const headDim = n('head_dim');
  const nGroups = n('n_groups', 1);
  const dState = n('state_size');
  const limit = raw['time_step_limit'];
  const dtLimit: [number, number] = Array.isArray(limit)
    ? [num(limit[0], 'time_step_limit[0]', file), num(limit[1], 'time_step_limit[1]', file)]
    : [0, Infinity];
  if (nHeads * headDim !== dInner) {
    throw new RangeError(`${file}: num_heads·head_dim must equal expand·hidden_size = ${dInner}, got ${nHeads}·${headDim}`);
  }
  return {
    format: 'hf',
    dModel,
    nLayer: n('num_hidden_layers'),
    vocabSize: n('vocab_size'),
    realVocabSize: n('vocab_size'),
    dState,
    dConv: n('conv_kernel', 4),
    expand,
    headDim,
    nHeads,
    nGroups,
    chunkSize: n('chunk_size', 256),
    dInner,
    dSsm: dInner,
    dMlp: 0,
    convDim: dInner + 2 * nGroups * dState,
    dInProj: 2 * dInner + 2 * nGroups * dState + nHeads,
    dtLimit,
    dHasHdim: false,
    rmsNorm: raw['rms_norm'] !== false,
    normBeforeGate: false,
    bias: raw['use_bias'] === true,
    convBias: raw['use_conv_bias'] !== false,
    tieEmbeddings: raw['tie_word_embeddings'] === true,
    normEps: n('layer_norm_epsilon', 1e-5),
    residualInFp32: raw['residual_in_fp32'] !== false,
    eosTokenId: typeof raw['eos_token_id'] === 'number' ? raw['eos_token_id'] : undefined,
  };
}

/** Every tensor of a store, as float32. */
export async function readAll(store: TensorStore): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  try {
    for (const key of store.keys()) out[key] = await store.readFloat32(key);
  } finally {
    await store.close();
  }
  return out;
}

export function fixtureExists(dir: string): boolean {
  return existsSync(join(dir, 'reference.json')) && existsSync(join(dir, 'hf', 'model.safetensors'));
}

/** Load `dir` (HF weights, or the mamba_ssm pytorch_model.bin with `format: 'mamba_ssm'`). */
export async function loadFixture(dir: string, format: 'hf' | 'mamba_ssm' = 'hf'): Promise<Fixture> {
  const cfgFile = join(dir, 'hf', 'config.json');
  const raw = parseLooseJson(await readFile(cfgFile, 'utf8'));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TypeError(`${cfgFile}: expected a JSON object`);
  const config = configFromHf(raw as Record<string, unknown>, cfgFile);
  const store =
    format === 'hf'
      ? await openSafetensors(join(dir, 'hf', 'model.safetensors'))
      : await openTorchCheckpoint(join(dir, 'mamba_ssm', 'pytorch_model.bin'));
  const weights = await readAll(store);
  const reference = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as ReferenceJson;
  return { dir, config, weights, reference };
}
