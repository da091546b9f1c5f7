import { describe, expect, it } from 'vitest';
import { parseModelMeta } from './parse-meta.js';
import { toyMeta } from '../../test/helpers/toy-model.js';

const text = (over: Record<string, unknown> = {}): string => JSON.stringify({ ...toyMeta(), ...over });

describe('parseModelMeta', () => {
  it('reads what the exporter writes, with dtLimit Infinity as null', () => {
    const m = parseModelMeta(text());
    expect(m.config.dtLimit).toEqual([0, Infinity]);
    expect(m.config.vocabSize).toBe(8);
    expect(m.io.inputs.map((e) => e.name)).toEqual(['input_ids', 'past_conv.0', 'past_ssm.0']);
  });

  it('also reads a bare Infinity and HF 5.x {"__float__": "Infinity"}', () => {
    const bare = text()
      .replace('"dtLimit": [\n      0,\n      null\n    ]', '')
      .replace(/"dtLimit":\[0,null\]/, '"dtLimit":[0,Infinity]');
    expect(parseModelMeta(bare).config.dtLimit[1]).toBe(Infinity);
    const hf = text().replace(/"dtLimit":\[0,null\]/, '"dtLimit":[0,{"__float__":"Infinity"}]');
    expect(parseModelMeta(hf).config.dtLimit[1]).toBe(Infinity);
  });

  it('names the file and the field on errors', () => {
    expect(() => parseModelMeta('{', 'dir/mamba2-onnx.json')).toThrow(/^dir\/mamba2-onnx\.json: not valid JSON/);
    expect(() => parseModelMeta(text({ format: 'x' }))).toThrow(/format expected "mamba2-onnx", got "x"/);
    expect(() => parseModelMeta(text({ formatVersion: 2 }))).toThrow(/formatVersion expected 1, got 2/);
    expect(() => parseModelMeta(text({ config: { ...toyMeta().config, nLayer: 0 } }))).toThrow(
      /config\.nLayer expected an integer ≥ 1, got 0/,
    );
    expect(() => parseModelMeta(text({ config: { ...toyMeta().config, realVocabSize: 9 } }))).toThrow(
      /realVocabSize \(9\) expected ≤ config\.vocabSize \(8\)/,
    );
    expect(() => parseModelMeta(text({ config: { ...toyMeta().config, eosTokenId: 8 } }))).toThrow(
      /config\.eosTokenId expected an integer in \[0, 8\), got 8/,
    );
    expect(() => parseModelMeta(text({ io: {} }))).toThrow(/io expected/);
    expect(() => parseModelMeta(text({ files: {} }))).toThrow(/files\.model expected a file name/);
  });
});
