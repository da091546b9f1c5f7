/**
 * Reads model `config.json` files into the frozen, validated `Mamba2Config` (plus `hybrid`, the
 * layer plan, for hybrids): the HF families by `model_type` (families/index.ts), the original
 * state-spaces/mamba format (no model_type) by families/mamba_ssm.ts. The shared core — errors,
 * the lenient JSON parser, the Mamba-2 fields — is config-core.ts. Key mapping and defaults:
 * docs/model.md §0, §4.3, §6.10/11/14/16. Every error names the file and the key, with expected vs got.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointFormat, Mamba2Config } from '../package/config.js';
import { asObject, ConfigError, parseConfigText, show } from './config-core.js';
import { familyByModelType, HF_FAMILIES, mambaSsmFamily } from './families/index.js';

export { ConfigError, type ConfigInput, makeConfig, parseConfigText } from './config-core.js';

/** Hybrid model types of other architectures that the exporter does not read (yet). */
const OTHER_HYBRIDS = new Set(['falcon_h1', 'zamba2', 'jamba']);

/** An HF config.json (`model_type` one of HF_FAMILIES: mamba2, bamba, granitemoehybrid, nemotron_h). */
export function hfConfigToMamba2(rawJson: unknown, file: string): Mamba2Config {
  const obj = asObject(rawJson, file, '');
  const type = obj.model_type;
  const family = familyByModelType(type);
  if (family) return family.readConfig(obj, file);
  const hint =
    typeof type === 'string' && OTHER_HYBRIDS.has(type)
      ? ': hybrid models are not supported yet'
      : type === undefined && ('ssm_cfg' in obj || 'd_model' in obj)
        ? ': this looks like a mamba_ssm config.json; use format "mamba_ssm"'
        : '';
  const want = HF_FAMILIES.map((f) => JSON.stringify(f.modelType)).join(' or ');
  throw new ConfigError(file, 'model_type', `expected ${want}, got ${show(type)}${hint}`);
}

/** An original state-spaces/mamba config.json (`MambaConfig`, families/mamba_ssm.ts). */
export function mambaSsmConfigToMamba2(rawJson: unknown, file: string): Mamba2Config {
  return mambaSsmFamily.readConfig(asObject(rawJson, file, ''), file);
}

/** Which parser a parsed config.json needs: HF configs carry `model_type`, mamba_ssm ones do not. */
export function detectConfigFormat(raw: unknown): CheckpointFormat {
  return raw !== null && typeof raw === 'object' && 'model_type' in raw ? 'hf' : 'mamba_ssm';
}

/** Parses an already-decoded config object of the given format. */
export function configFromJson(raw: unknown, format: CheckpointFormat, file: string): Mamba2Config {
  return format === 'hf' ? hfConfigToMamba2(raw, file) : mambaSsmConfigToMamba2(raw, file);
}

/** Reads `dir/config.json` in the given checkpoint format. */
export async function loadConfig(dir: string, format: CheckpointFormat): Promise<Mamba2Config> {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the config: ${(e as Error).message}`);
  }
  return configFromJson(parseConfigText(text, file), format, file);
}
