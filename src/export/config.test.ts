import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectConfigError } from '../../test/helpers/errors.js';
import { detectConfigFormat, hfConfigToMamba2, loadConfig, makeConfig, mambaSsmConfigToMamba2, parseConfigText } from './config.js';
import type { Mamba2Config } from '../package/config.js';

const FIXTURES = process.env.MAMBA2_FIXTURES ?? fileURLToPath(new URL('../../../shared/fixtures', import.meta.url));
const HAVE_FIXTURES = existsSync(FIXTURES);
const skipNote = HAVE_FIXTURES ? '' : ` (skipped: no fixtures at ${FIXTURES})`;

const hf = (over: Record<string, unknown> = {}): Mamba2Config =>
  hfConfigToMamba2(
    {
      model_type: 'mamba2',
      hidden_size: 64,
      num_hidden_layers: 2,
      vocab_size: 128,
      state_size: 16,
      head_dim: 16,
      num_heads: 8,
      n_groups: 2,
      chunk_size: 16,
      ...over,
    },
    'hf.json',
  );
const ssm = (over: Record<string, unknown> = {}, ssmCfg: Record<string, unknown> = {}): Mamba2Config =>
  mambaSsmConfigToMamba2(
    { d_model: 768, n_layer: 24, vocab_size: 50277, pad_vocab_size_multiple: 16, ssm_cfg: { layer: 'Mamba2', ...ssmCfg }, ...over },
    'ssm.json',
  );

describe('parseConfigText', () => {
  it('reads bare Infinity, -Infinity and NaN outside strings', () => {
    const v = parseConfigText('{"a": [0.0, Infinity], "b": -Infinity, "c": [NaN, -1.5e3]}', 'x.json');
    expect(v).toEqual({ a: [0, Infinity], b: -Infinity, c: [NaN, -1500] });
  });

  it('reads HF 5.x {"__float__": …} objects, nested anywhere', () => {
    const v = parseConfigText('{"t": [0.0, {"__float__": "Infinity"}], "n": {"m": {"__float__": "-Infinity"}}}', 'x');
    expect(v).toEqual({ t: [0, Infinity], n: { m: -Infinity } });
  });

  it('leaves the words alone inside strings, escapes included', () => {
    const text = '{"Infinity": "NaN and -Infinity", "q\\"Infinity": "a\\\\", "k": Infinity}';
    expect(parseConfigText(text, 'x')).toEqual({ Infinity: 'NaN and -Infinity', 'q"Infinity': 'a\\', k: Infinity });
  });

  it('names the file on bad JSON and on an unknown __float__ word', () => {
    expectConfigError(() => parseConfigText('{"a": 1,}', 'bad.json'), 'bad.json', 'invalid JSON');
    expectConfigError(() => parseConfigText('{"a": {"__float__": "big"}}', 'f.json'), 'f.json', '"a"', '"big"');
  });
});

describe('hfConfigToMamba2', () => {
  it('maps keys and derives sizes', () => {
    const c = hf({ bos_token_id: 0, eos_token_id: [2, 3], pad_token_id: 1, time_step_limit: [0.0, Infinity] });
    expect(c).toMatchObject({
      format: 'hf',
      dModel: 64,
      nLayer: 2,
      vocabSize: 128,
      realVocabSize: 128,
      dState: 16,
      dConv: 4,
      expand: 2,
      headDim: 16,
      nHeads: 8,
      nGroups: 2,
      chunkSize: 16,
      dInner: 128,
      dSsm: 128,
      dMlp: 0,
      convDim: 128 + 64,
      dInProj: 2 * 128 + 64 + 8,
      dtLimit: [0, Infinity],
      tieEmbeddings: false,
      normBeforeGate: false,
      bias: false,
      convBias: true,
      rmsNorm: true,
      normEps: 1e-5,
      residualInFp32: true,
      bosTokenId: 0,
      eosTokenId: 2,
      padTokenId: 1,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.dtLimit)).toBe(true);
  });

  it('applies transformers defaults: Codestral sizes, untied, num_heads 128', () => {
    const c = hfConfigToMamba2({ model_type: 'mamba2' }, 'min.json');
    expect(c).toMatchObject({
      dModel: 4096,
      nLayer: 64,
      vocabSize: 32768,
      nHeads: 128,
      nGroups: 8,
      headDim: 64,
      dState: 128,
      chunkSize: 256,
      tieEmbeddings: false,
      bosTokenId: 0,
      eosTokenId: 2,
      padTokenId: 1,
    });
  });

  it('ignores norm_before_gate (HF hard-codes False, docs/model.md §6.3)', () => {
    expect(hf({ norm_before_gate: true }).normBeforeGate).toBe(false);
  });

  it('refuses num_heads that disagrees with expand·hidden_size/head_dim', () => {
    expectConfigError(() => hf({ num_heads: 4 }), 'hf.json', '"num_heads"', 'expected', '= 8', 'got 4');
    expectConfigError(() => hf({ num_heads: undefined }), 'num_heads (absent', 'got 128');
  });

  it('refuses other model types, naming hybrids and mamba_ssm configs', () => {
    expectConfigError(() => hf({ model_type: 'mamba' }), '"model_type"', 'expected "mamba2" or "bamba"', 'got "mamba"');
    expectConfigError(() => hf({ model_type: 'zamba2' }), 'hybrid models are not supported yet');
    expectConfigError(() => hfConfigToMamba2({ d_model: 64, ssm_cfg: {} }, 's.json'), 'use format "mamba_ssm"');
    expectConfigError(() => hfConfigToMamba2([1], 'arr.json'), 'arr.json', 'expected a JSON object');
  });

  it('refuses an activation other than silu', () => {
    expectConfigError(() => hf({ hidden_act: 'gelu' }), '"hidden_act"', '"gelu"');
  });
});

describe('mambaSsmConfigToMamba2', () => {
  it('pads the vocab up and keeps the raw count, with Mamba2 defaults and tied embeddings', () => {
    const c = ssm();
    expect(c).toMatchObject({
      format: 'mamba_ssm',
      vocabSize: 50288,
      realVocabSize: 50277,
      dState: 128,
      dConv: 4,
      expand: 2,
      headDim: 64,
      nGroups: 1,
      chunkSize: 256,
      dtLimit: [0, Infinity],
      dHasHdim: false,
      rmsNorm: true,
      normBeforeGate: false,
      bias: false,
      convBias: true,
      tieEmbeddings: true,
      normEps: 1e-5,
      residualInFp32: true,
      nHeads: 24,
    });
    expect(c.bosTokenId).toBeUndefined();
    expect(ssm({ pad_vocab_size_multiple: undefined }).vocabSize).toBe(50280); // MambaConfig default multiple 8
  });

  it('reads every ssm_cfg key', () => {
    const c = ssm(
      { tie_embeddings: false, norm_epsilon: 1e-6, residual_in_fp32: false },
      {
        d_state: 64,
        d_conv: 3,
        expand: 2,
        headdim: 32,
        ngroups: 4,
        chunk_size: 128,
        dt_limit: [0.001, 0.5],
        D_has_hdim: true,
        rmsnorm: false,
        norm_before_gate: true,
        bias: true,
        conv_bias: false,
        d_ssm: 1024,
      },
    );
    expect(c).toMatchObject({
      dState: 64,
      dConv: 3,
      headDim: 32,
      nGroups: 4,
      chunkSize: 128,
      dtLimit: [0.001, 0.5],
      dHasHdim: true,
      rmsNorm: false,
      normBeforeGate: true,
      bias: true,
      convBias: false,
      dSsm: 1024,
      dInner: 1536,
      dMlp: 512,
      nHeads: 32,
      convDim: 1024 + 512,
      dInProj: 3072 + 512 + 32,
      tieEmbeddings: false,
      normEps: 1e-6,
      residualInFp32: false,
    });
  });

  it('refuses Mamba-1, LayerNorm blocks (hybrids: hybrid-config.test.ts)', () => {
    expectConfigError(() => ssm({ ssm_cfg: {} }), '"ssm_cfg.layer"', 'got "Mamba1" (the default when absent)');
    expectConfigError(() => ssm({}, { layer: 'Mamba1' }), 'ssm.json', 'only Mamba-2');
    expectConfigError(() => ssm({ rms_norm: false }), '"rms_norm"', 'LayerNorm');
    expectConfigError(() => ssm({ model_type: 'mamba2' }), 'use format "hf"');
  });
});

describe('validation', () => {
  it.each([
    ['non-integer size', () => ssm({ d_model: 64.5 }), ['"d_model"', 'positive integer', 'got 64.5']],
    ['zero layers', () => ssm({ n_layer: 0 }), ['"n_layer"', 'got 0']],
    ['string size', () => hf({ hidden_size: '64' }), ['"hidden_size"', 'got "64"']],
    ['chunk 0', () => ssm({}, { chunk_size: 0 }), ['"ssm_cfg.chunk_size"', 'got 0']],
    ['bad vocab multiple', () => ssm({ pad_vocab_size_multiple: 0 }), ['"pad_vocab_size_multiple"']],
    ['heads not divisible by groups', () => ssm({}, { ngroups: 5 }), ['"ssm_cfg.ngroups"', '24 heads', 'got 5']],
    ['head dim not dividing d_ssm', () => ssm({}, { headdim: 100 }), ['"ssm_cfg.headdim"', 'd_ssm = 1536']],
    ['dt_limit lo > hi', () => ssm({}, { dt_limit: [0.5, 0.1] }), ['"ssm_cfg.dt_limit"', 'lo ≤ hi', '[0.5, 0.1]']],
    ['dt_limit lo < 0', () => hf({ time_step_limit: [-1, 1] }), ['"time_step_limit"', '≥ 0', 'got -1']],
    ['dt_limit NaN', () => hf({ time_step_limit: [0, NaN] }), ['"time_step_limit"', 'two numbers']],
    ['dt_limit length', () => hf({ time_step_limit: [0] }), ['"time_step_limit"', '[lo, hi]']],
    ['NaN epsilon', () => hf({ layer_norm_epsilon: NaN }), ['"layer_norm_epsilon"', 'got NaN']],
    ['expand·D not integer', () => hf({ expand: 1.3, hidden_size: 64 }), ['"expand"', 'integer', '1.3 × 64']],
    ['d_ssm > d_inner', () => ssm({}, { d_ssm: 4096 }), ['"ssm_cfg.d_ssm"', 'at most d_inner = 1536']],
    ['bool as string', () => hf({ use_bias: 'false' }), ['"use_bias"', 'true or false']],
    ['token id out of range', () => hf({ eos_token_id: 500 }), ['"eos_token_id"', '[0, 128)', 'got 500']],
  ])('%s', (_, fn, fragments) => expectConfigError(fn, ...fragments));

  it('accepts a non-integer expand when expand·D is an integer (HF allows 1.5)', () => {
    const c = hf({ expand: 1.5, hidden_size: 64, num_heads: 6, n_groups: 2 });
    expect([c.dInner, c.nHeads]).toEqual([96, 6]);
  });
});

describe('makeConfig', () => {
  it('derives every size and freezes', () => {
    const c = makeConfig({ dModel: 768, nLayer: 24, vocabSize: 50288, realVocabSize: 50277 });
    expect(c).toMatchObject({
      nHeads: 24,
      dInProj: 3352,
      convDim: 1792,
      dInner: 1536,
      dSsm: 1536,
      dMlp: 0,
      tieEmbeddings: true,
      format: 'mamba_ssm',
    });
    expect(() => {
      (c as { dModel: number }).dModel = 1;
    }).toThrow(TypeError);
    expect(makeConfig({ dModel: 64, nLayer: 1, vocabSize: 8, format: 'hf', headDim: 16 }).tieEmbeddings).toBe(false);
  });

  it('validates like the parsers, naming the field', () => {
    expectConfigError(
      () => makeConfig({ dModel: 64, nLayer: 1, vocabSize: 8, nHeads: 3, headDim: 16 }),
      'makeConfig',
      '"nHeads"',
      'expected',
      'got 3',
    );
    expectConfigError(
      () => makeConfig({ dModel: 64, nLayer: 1, vocabSize: 8, realVocabSize: 9, headDim: 16 }),
      '"realVocabSize"',
      'at most the 8',
    );
  });
});

describe('loadConfig', () => {
  it('reads dir/config.json and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mamba2-config-'));
    try {
      await writeFile(
        join(dir, 'config.json'),
        '{"model_type": "mamba2", "hidden_size": 32, "num_heads": 4, "head_dim": 16, "n_groups": 1,' +
          ' "time_step_limit": [0.0, Infinity]}',
      );
      const c = await loadConfig(dir, 'hf');
      expect([c.dModel, c.nHeads, c.dtLimit[1]]).toEqual([32, 4, Infinity]);
      await expect(loadConfig(dir, 'mamba_ssm')).rejects.toThrow(`${join(dir, 'config.json')}: "model_type"`);
      await expect(loadConfig(join(dir, 'nope'), 'hf')).rejects.toThrow('cannot read the config');
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe(`fixture configs${skipNote}`, () => {
  it.skipIf(!HAVE_FIXTURES).each(['hf-tiny-untied', 'hf-small-g2'])('%s: hf and mamba_ssm agree', async (name) => {
    const a = await loadConfig(join(FIXTURES, name, 'hf'), 'hf');
    const b = await loadConfig(join(FIXTURES, name, 'mamba_ssm'), 'mamba_ssm');
    const strip = ({ format, bosTokenId, eosTokenId, padTokenId, ...rest }: Mamba2Config): object => rest;
    expect(strip(a)).toEqual(strip(b));
    expect([a.format, b.format]).toEqual(['hf', 'mamba_ssm']);
    expect(a.dtLimit).toEqual([0, Infinity]);
  });

  it.skipIf(!HAVE_FIXTURES)('hf-small-g2 has the README sizes; bamba-tiny reads as a hybrid', async () => {
    const c = await loadConfig(join(FIXTURES, 'hf-small-g2', 'hf'), 'hf');
    expect(c).toMatchObject({
      dModel: 64,
      nLayer: 4,
      nHeads: 8,
      headDim: 16,
      dState: 16,
      nGroups: 2,
      chunkSize: 16,
      vocabSize: 128,
      tieEmbeddings: true,
      eosTokenId: 2,
    });
    const bamba = await loadConfig(join(FIXTURES, 'bamba-tiny', 'hf'), 'hf');
    expect(bamba).toMatchObject({
      dModel: 64,
      nLayer: 4,
      nHeads: 8,
      headDim: 16,
      hybrid: { family: 'bamba', layers: ['mamba2', 'attention', 'mamba2', 'mamba2'] },
    });
  });
});

describe('detectConfigFormat', () => {
  it('tells HF from mamba_ssm by model_type', () => {
    expect(detectConfigFormat({ model_type: 'mamba2' })).toBe('hf');
    expect(detectConfigFormat({ d_model: 1 })).toBe('mamba_ssm');
  });
});
