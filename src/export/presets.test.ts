import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.js';
import { listPresets, loadPreset, modelsDir } from './presets.js';

/** docs/model.md §5: [D, NL, V, H, F, Cdim, G, tied]. */
const SPEC5: Record<string, [number, number, number, number, number, number, number, boolean]> = {
  'mamba2-130m': [768, 24, 50288, 24, 3352, 1792, 1, true],
  'mamba2-370m': [1024, 48, 50288, 32, 4384, 2304, 1, true],
  'mamba2-780m': [1536, 48, 50288, 48, 6448, 3328, 1, true],
  'mamba2-1.3b': [2048, 48, 50288, 64, 8512, 4352, 1, true],
  'mamba2-2.7b': [2560, 64, 50288, 80, 10576, 5376, 1, true],
  'mamba2attn-2.7b': [2560, 64, 50288, 80, 10576, 5376, 1, true], // + MHA layers (hybrid-config.test.ts)
  'Mamba-Codestral-7B': [4096, 64, 32768, 128, 18560, 10240, 8, false],
};

describe('presets', () => {
  it('lists every preset', () => {
    expect(listPresets()).toEqual([...Object.keys(SPEC5), 'tiny'].sort());
  });

  it.each(Object.entries(SPEC5))('%s has the sizes of docs/model.md §5', (name, [D, NL, V, H, F, Cdim, G, tied]) => {
    const p = loadPreset(name);
    const c = p.config;
    expect([c.dModel, c.nLayer, c.vocabSize, c.nHeads, c.dInProj, c.convDim, c.nGroups, c.tieEmbeddings]).toEqual([
      D,
      NL,
      V,
      H,
      F,
      Cdim,
      G,
      tied,
    ]);
    expect([c.dState, c.headDim, c.dConv, c.chunkSize, c.dMlp, c.dtLimit[0], c.dtLimit[1]]).toEqual([128, 64, 4, 256, 0, 0, Infinity]);
    expect(p.name).toBe(name);
    expect(p.format).toBe(name.startsWith('Mamba-Codestral') ? 'hf' : 'mamba_ssm');
    expect(p.source).toMatch(/^(state-spaces|mistralai)\//);
    if (p.format === 'mamba_ssm') expect(c.realVocabSize).toBe(50277);
  });

  it('has a tiny preset', () => {
    const c = loadPreset('tiny').config;
    expect(c).toMatchObject({
      dModel: 64,
      nLayer: 2,
      vocabSize: 256,
      dState: 16,
      headDim: 16,
      chunkSize: 16,
      nGroups: 1,
      nHeads: 8,
      dInner: 128,
      convDim: 160,
      dInProj: 2 * 128 + 32 + 8,
    });
  });

  it('refuses an unknown name, listing the available ones', () => {
    expect(() => loadPreset('mamba2-9b')).toThrow(/expected one of Mamba-Codestral-7B, .*tiny .*got "mamba2-9b"/);
  });

  it('resolves models/ from the package, not the cwd, and loads a preset by path', async () => {
    const cwd = process.cwd();
    const dir = await mkdtemp(join(tmpdir(), 'mamba2-preset-'));
    try {
      process.chdir(dir);
      expect(loadPreset('tiny').config.dModel).toBe(64);
      expect(modelsDir()).toBe(join(cwd, 'models'));
      const file = join(dir, 'mine.json');
      await writeFile(
        file,
        '{"source": "x", "format": "hf", "config": {"model_type": "mamba2", "hidden_size": 32,' +
          ' "num_heads": 4, "head_dim": 16, "n_groups": 2, "time_step_limit": [0, Infinity]}}',
      );
      const p = loadPreset(file);
      expect([p.name, p.format, p.config.nGroups]).toEqual(['mine', 'hf', 2]);
      await writeFile(file, '{"source": "x", "format": "hf", "config": {"model_type": "mamba2", "hidden_size": 32}}');
      expect(() => loadPreset(file)).toThrow(ConfigError);
      expect(() => loadPreset(file)).toThrow(`${file} (config): "num_heads (absent`);
      await writeFile(file, '{"source": "x", "format": "onnx", "config": {}}');
      expect(() => loadPreset(file)).toThrow('"format": expected "hf" or "mamba_ssm", got "onnx"');
    } finally {
      process.chdir(cwd);
      await rm(dir, { recursive: true });
    }
  });
});
