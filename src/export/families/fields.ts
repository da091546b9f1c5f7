/**
 * Field readers shared by the family modules: each checks one config.json value and fails with the
 * key and expected vs got (the Fail passed in names the file).
 */
import type { AttentionConfig, LayerKind } from '../../package/layers.js';
import type { Fail, JsonObject } from './types.js';

export const show = (v: unknown): string => (v === undefined ? 'nothing (missing)' : JSON.stringify(v));
export const isObj = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

export function posInt(v: unknown, key: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 24) fail(key, `expected a positive integer, got ${show(v)}`);
  return v as number;
}

export function nonNegInt(v: unknown, key: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 24) fail(key, `expected an integer ≥ 0, got ${show(v)}`);
  return v as number;
}

export function bool(v: unknown, key: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(key, `expected true or false, got ${show(v)}`);
  return v as boolean;
}

export function positive(v: unknown, key: string, fail: Fail): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(key, `expected a positive finite number, got ${show(v)}`);
  return v as number;
}

/** A key that must be false (or absent): a feature no published model of the family uses and the exporter does not build. */
export function mustBeFalse(obj: JsonObject, key: string, fail: Fail, what: string): void {
  const v = obj[key] ?? false;
  if (v !== false) fail(key, `expected false, got ${show(v)}: ${what} not supported`);
}

/** Layer kinds from a list of attention layer indices (each in [0, nLayer), no repeats). */
export function kindsFromIndices(v: unknown, key: string, nLayer: number, fail: Fail): LayerKind[] {
  const list = v ?? [];
  if (!Array.isArray(list)) fail(key, `expected a list of layer indices, got ${show(v)}`);
  const kinds: LayerKind[] = Array.from({ length: nLayer }, () => 'mamba2');
  for (const i of list as unknown[]) {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= nLayer)
      fail(key, `expected layer indices in [0, ${nLayer}), got ${show(i)}`);
    if (kinds[i as number] === 'attention') fail(key, `expected distinct layer indices, got ${i} twice`);
    kinds[i as number] = 'attention';
  }
  return kinds;
}

/**
 * Layer kinds from a per-layer list of names (`layer_types`, `layers_block_type`), each mapped by
 * `names` (HF's current and legacy spellings both).
 */
export function kindsFromNames(v: unknown, key: string, names: Readonly<Record<string, LayerKind>>, fail: Fail): LayerKind[] {
  if (!Array.isArray(v) || v.length === 0) fail(key, `expected a non-empty list of layer types, got ${show(v)}`);
  return (v as unknown[]).map((t, i) => {
    const kind = typeof t === 'string' ? names[t] : undefined;
    if (kind === undefined)
      fail(
        `${key}[${i}]`,
        `expected one of ${Object.keys(names)
          .map((n) => JSON.stringify(n))
          .join(', ')}, got ${show(t)}`,
      );
    return kind as LayerKind;
  });
}

/** Checks shared by every family: GQA head counts and the rotary width. */
export function checkAttention(a: AttentionConfig, keys: { heads: string; kv: string; rotary: string }, fail: Fail): AttentionConfig {
  if (a.nHeads % a.nKvHeads !== 0) fail(keys.kv, `expected a divisor of the ${a.nHeads} query heads, got ${a.nKvHeads}`);
  if (a.rotaryDim % 2 !== 0 || a.rotaryDim > a.headDim) {
    fail(keys.rotary, `expected an even rotary width ≤ head_dim ${a.headDim}, got ${a.rotaryDim}`);
  }
  return Object.freeze(a);
}

/**
 * `rope_parameters` (HF 5.x) or the top-level `rope_theta`: the default rope type only (no scaling).
 * Returns the base θ and the partial rotary factor (`dflt` when absent).
 */
export function ropeFields(obj: JsonObject, fail: Fail, dflt: { theta: number; factor: number }): { theta: number; factor: number } {
  const rope = obj.rope_parameters ?? {};
  if (!isObj(rope)) fail('rope_parameters', `expected an object, got ${show(rope)}`);
  const r = rope as JsonObject;
  const ropeType = r.rope_type ?? r.type ?? 'default';
  if (ropeType !== 'default') fail('rope_parameters.rope_type', `expected "default", got ${show(ropeType)}: RoPE scaling is not supported`);
  const factor = r.partial_rotary_factor ?? obj.partial_rotary_factor ?? dflt.factor;
  if (typeof factor !== 'number' || !(factor > 0) || factor > 1)
    fail('partial_rotary_factor', `expected a number in (0, 1], got ${show(factor)}`);
  const theta = positive(r.rope_theta ?? obj.rope_theta ?? dflt.theta, 'rope_parameters.rope_theta', fail);
  return { theta, factor: factor as number };
}
