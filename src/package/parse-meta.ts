/**
 * Reading `mamba2-onnx.json` (ModelMeta) with checks, so that a wrong or foreign file is a clear
 * error before any session is created. Platform-neutral: the caller reads the text.
 */
import type { Mamba2Config } from './config.js';
import type { ModelMeta } from './meta.js';

export class ModelMetaError extends Error {
  override readonly name = 'ModelMetaError';
  constructor(source: string, detail: string) {
    super(`${source}: ${detail}`);
  }
}

/**
 * JSON.parse that also reads the ways an infinite float gets written: a bare `Infinity`
 * (Python's json), `{"__float__": "Infinity"}` (HF 5.x), and `null` in `config.dtLimit[1]`
 * (JSON.stringify of Infinity).
 */
function parseLenient(text: string): unknown {
  const bare = text.replace(
    /([[,:]\s*)(-?)Infinity(?=\s*[,\]}])/g,
    (_m, pre: string, sign: string) => `${pre}{"__float__":"${sign}Infinity"}`,
  );
  return JSON.parse(bare, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const f = (v as { __float__?: unknown }).__float__;
      if (Object.keys(v).length === 1 && typeof f === 'string') return Number(f);
    }
    return v;
  });
}

const NUMERIC_CONFIG: readonly (keyof Mamba2Config)[] = [
  'dModel',
  'nLayer',
  'vocabSize',
  'realVocabSize',
  'dState',
  'dConv',
  'headDim',
  'nHeads',
  'nGroups',
  'convDim',
];

/** Parse and check the text of mamba2-onnx.json. `source` names the file in errors. */
export function parseModelMeta(text: string, source = 'mamba2-onnx.json'): ModelMeta {
  let raw: unknown;
  try {
    raw = parseLenient(text);
  } catch (e) {
    throw new ModelMetaError(source, `not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new ModelMetaError(source, 'expected a JSON object');
  const m = raw as Partial<ModelMeta> & Record<string, unknown>;
  if (m.format !== 'mamba2-onnx') throw new ModelMetaError(source, `format expected "mamba2-onnx", got ${JSON.stringify(m.format)}`);
  if (m.formatVersion !== 1)
    throw new ModelMetaError(source, `formatVersion expected 1, got ${JSON.stringify(m.formatVersion)} (written by a newer exporter?)`);
  const c = m.config as (Mamba2Config & Record<string, unknown>) | undefined;
  if (typeof c !== 'object' || c === null) throw new ModelMetaError(source, 'config expected an object');
  for (const k of NUMERIC_CONFIG) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new ModelMetaError(source, `config.${k} expected an integer ≥ 1, got ${JSON.stringify(v)}`);
  }
  if (c.realVocabSize > c.vocabSize) {
    throw new ModelMetaError(source, `config.realVocabSize (${c.realVocabSize}) expected ≤ config.vocabSize (${c.vocabSize})`);
  }
  if (Array.isArray(c.dtLimit) && c.dtLimit[1] === null) (c as { dtLimit: unknown }).dtLimit = [c.dtLimit[0], Infinity];
  for (const k of ['eosTokenId', 'bosTokenId', 'padTokenId'] as const) {
    const v = c[k];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= c.vocabSize)) {
      throw new ModelMetaError(source, `config.${k} expected an integer in [0, ${c.vocabSize}), got ${JSON.stringify(v)}`);
    }
    if (v === null) delete (c as Record<string, unknown>)[k];
  }
  const io = m.io;
  if (!io || !Array.isArray(io.inputs) || !Array.isArray(io.outputs))
    throw new ModelMetaError(source, 'io expected {inputs: [...], outputs: [...]}');
  const files = m.files;
  if (!files || typeof files.model !== 'string' || files.model === '') throw new ModelMetaError(source, 'files.model expected a file name');
  return m as ModelMeta;
}
