/**
 * Tokenizer files of an export (issue 20, finding 4):
 * - random-weight exports ship the project's byte-level tokenizer (GPT-NeoX layout: `<|endoftext|>`
 *   = 0, byte b = id b + 1), so string prompts work out of the box;
 * - files copied from a checkpoint are written fresh (0644-style), not with the source's mode;
 * - both checkpoint formats take the EOS the same way: generation_config.json, then config.json,
 *   then the tokenizer's eos_token.
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { byteLevelBpe } from '../../test/helpers/tiny-tokenizers.js';
import type { ModelMeta } from '../package/meta.js';
import { Mamba2Model } from '../runtime/model.js';
import { TextTokenizer } from '../runtime/tokenizer.js';
import { byteTokenizer } from './byte-tokenizer.js';
import { exportModel } from './index.js';

const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures/small-g2');
const root = mkdtempSync(join(tmpdir(), 'm2o-tok-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const fresh = (name: string): string => join(root, `${name}-${n++}`);
const meta = (dir: string): ModelMeta => JSON.parse(readFileSync(join(dir, 'mamba2-onnx.json'), 'utf8')) as ModelMeta;

/** A preset of the tiny shape with `vocab` rows. */
function preset(vocab: number): string {
  const file = join(root, `tiny-${vocab}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      source: 'none (random weights)',
      format: 'mamba_ssm',
      config: {
        d_model: 64,
        d_intermediate: 0,
        n_layer: 2,
        vocab_size: vocab,
        ssm_cfg: { layer: 'Mamba2', d_state: 16, d_conv: 4, expand: 2, headdim: 16, ngroups: 1, chunk_size: 16 },
        rms_norm: true,
        residual_in_fp32: true,
        fused_add_norm: true,
        pad_vocab_size_multiple: 16,
        tie_embeddings: true,
      },
    }),
  );
  return file;
}

const TEXTS = ['Mamba-2 is', 'hello world', 'wörld — 中文 🐍\n\ttabs  and  spaces ', '<|endoftext|> is special'];

describe('random-weight exports ship a byte-level tokenizer', () => {
  it('tokenizer.json + tokenizer_config.json that round-trip text, ids inside the real vocabulary, EOS = 0', async () => {
    const out = fresh('random');
    const r = await exportModel({ preset: preset(500), randomWeights: true, seed: 3 }, { outDir: out });
    expect(r.files).toEqual(expect.arrayContaining(['tokenizer.json', 'tokenizer_config.json']));
    const m = meta(out);
    expect(m.files.tokenizer).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    expect(m.config.eosTokenId).toBe(0);
    const tok = TextTokenizer.fromJSON(
      JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')),
    );
    expect(tok.size).toBe(257);
    expect(tok.size).toBeLessThanOrEqual(m.config.realVocabSize);
    expect(tok.eosTokenId).toBe(0);
    for (const text of TEXTS.slice(0, 3)) {
      const ids = tok.encode(text);
      expect(ids.every((id) => id >= 1 && id <= 256)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.encode('a')).toEqual(['a'.charCodeAt(0) + 1]);
    expect(tok.decode(tok.encode(TEXTS[3]!))).toBe(' is special'); // the special token is skipped when decoding
    expect(tok.decode(tok.encode(TEXTS[3]!), { skipSpecialTokens: false })).toBe(TEXTS[3]);

    // and a string prompt generates
    const model = await Mamba2Model.load(out);
    try {
      const g = await model.generate('Mamba-2 is', { maxNewTokens: 4, temperature: 0 });
      expect(g.outputIds.length).toBeGreaterThan(0);
      expect(typeof g.text).toBe('string');
    } finally {
      await model.release();
    }
  });

  it('the same tokenizer object the test helpers build on', () => {
    const t = byteTokenizer();
    const helper = byteLevelBpe();
    const vocab = (t.json as { model: { vocab: Record<string, number> } }).model.vocab;
    const helperVocab = (helper.json as { model: { vocab: Record<string, number> } }).model.vocab;
    for (const [k, v] of Object.entries(vocab)) expect(helperVocab[k]).toBe(v);
  });

  it('a vocabulary smaller than the tokenizer’s 257 ids gets none (token-id prompts only)', async () => {
    const out = fresh('tiny');
    await exportModel({ preset: 'tiny', randomWeights: true, seed: 1 }, { outDir: out });
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(false);
    expect(meta(out).files.tokenizer).toEqual([]);
    expect(meta(out).config.eosTokenId).toBeUndefined();
  });
});

describe('tokenizer files copied from a checkpoint', () => {
  it('are written 0644-style even when the checkpoint’s are read-only (0444), and --force can replace them', async () => {
    const ckpt = fresh('ro-ckpt');
    cpSync(join(FIXTURES, 'hf'), ckpt, { recursive: true });
    const tok = byteLevelBpe();
    writeFileSync(join(ckpt, 'tokenizer.json'), JSON.stringify(tok.json));
    writeFileSync(join(ckpt, 'tokenizer_config.json'), JSON.stringify(tok.config));
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) chmodSync(join(ckpt, f), 0o444);
    const out = fresh('ro-out');
    await exportModel({ checkpointDir: ckpt }, { outDir: out });
    const metaMode = statSync(join(out, 'mamba2-onnx.json')).mode & 0o777;
    expect(metaMode & 0o200).toBe(0o200);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      expect((statSync(join(out, f)).mode & 0o777).toString(8), f).toBe(metaMode.toString(8));
      expect(readFileSync(join(out, f), 'utf8')).toBe(readFileSync(join(ckpt, f), 'utf8'));
    }
    await exportModel({ checkpointDir: ckpt }, { outDir: out, overwrite: true });
  });
});

describe('EOS: HF and mamba_ssm checkpoints of the same weights agree', () => {
  const exportOf = async (format: 'hf' | 'mamba_ssm', edit: (dir: string) => void = () => {}): Promise<ModelMeta> => {
    const ckpt = fresh(`${format}-ckpt`);
    cpSync(join(FIXTURES, format), ckpt, { recursive: true });
    edit(ckpt);
    const out = fresh(`${format}-out`);
    await exportModel({ checkpointDir: ckpt }, { outDir: out });
    return meta(out);
  };
  const genConfig =
    (eos: unknown) =>
    (dir: string): void =>
      writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: eos, pad_token_id: 1 }));
  const tokenizer = (dir: string): void => {
    const t = byteLevelBpe();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t.json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(t.config));
  };

  it('the HF fixture stops at 2 (config.json and generation_config.json)', async () => {
    expect((await exportOf('hf')).config.eosTokenId).toBe(2);
  });

  it('mamba_ssm with the same generation_config.json: 2 as well', async () => {
    expect((await exportOf('mamba_ssm', genConfig(2))).config.eosTokenId).toBe(2);
  });

  it('mamba_ssm with a tokenizer (eos_token <|endoftext|> = 0) and no generation config: 0', async () => {
    expect((await exportOf('mamba_ssm', tokenizer)).config.eosTokenId).toBe(0);
  });

  it('mamba_ssm with neither: no EOS (mamba_ssm itself does not stop), as before', async () => {
    expect((await exportOf('mamba_ssm')).config.eosTokenId).toBeUndefined();
  });

  it('generation_config.json wins over config.json (as in transformers’ generate), a list gives its first id', async () => {
    expect((await exportOf('hf', genConfig(0))).config.eosTokenId).toBe(0);
    expect((await exportOf('mamba_ssm', genConfig([3, 2]))).config.eosTokenId).toBe(3);
  });

  it('an impossible eos_token_id in generation_config.json is refused, naming the file', async () => {
    await expect(exportOf('mamba_ssm', genConfig(4096))).rejects.toThrow(/generation_config\.json.*eos_token_id.*4096/);
  });
});
