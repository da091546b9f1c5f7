/**
 * Named model shapes in `models/<name>.json`: `{ source, provenance, format, config }`, where `config`
 * is the model's own config.json (mamba_ssm or HF form), read by the same parser as a checkpoint's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, configFromJson, parseConfigText } from './config.js';
import type { CheckpointFormat, Mamba2Config } from '../package/config.js';

export interface Preset {
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: Mamba2Config;
  /** Where the real weights live (an HF repo id), or a note for synthetic shapes. */
  readonly source: string;
  readonly file: string;
}

let modelsDirCache: string | undefined;

/** `models/` at the package root: the nearest ancestor of this module holding package.json and models/. */
export function modelsDir(): string {
  if (modelsDirCache !== undefined) return modelsDirCache;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) {
      modelsDirCache = join(dir, 'models');
      return modelsDirCache;
    }
    if (dirname(dir) === dir) throw new Error(`models/: no package root with a models/ folder above ${start}`);
  }
}

/** Names of the presets in models/, sorted. */
export function listPresets(): string[] {
  return readdirSync(modelsDir())
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Reads a preset JSON file from any path. */
function loadPresetFile(file: string): Preset {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the preset: ${(e as Error).message}`);
  }
  const raw = parseConfigText(text, file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, '', `expected a preset object { source, format, config }, got ${JSON.stringify(raw)}`);
  }
  const { source, format, config } = raw as Record<string, unknown>;
  if (format !== 'hf' && format !== 'mamba_ssm') {
    throw new ConfigError(file, 'format', `expected "hf" or "mamba_ssm", got ${JSON.stringify(format)}`);
  }
  if (typeof source !== 'string') {
    throw new ConfigError(file, 'source', `expected a string, got ${JSON.stringify(source)}`);
  }
  return Object.freeze({
    name: basename(file).replace(/\.json$/, ''),
    format,
    config: configFromJson(config, format, `${file} (config)`),
    source,
    file,
  });
}

/** A preset by name (`mamba2-130m`) or by path to a preset JSON file (`models/x.json`, `./my.json`). */
export function loadPreset(nameOrPath: string): Preset {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/') || nameOrPath.includes('\\')) {
    return loadPresetFile(resolve(nameOrPath));
  }
  const names = listPresets();
  if (!names.includes(nameOrPath)) {
    const known = `${names.join(', ')} (or a path to a .json file)`;
    throw new RangeError(`preset: expected one of ${known}, got "${nameOrPath}"`);
  }
  return loadPresetFile(join(modelsDir(), `${nameOrPath}.json`));
}
