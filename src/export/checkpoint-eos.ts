/**
 * The EOS id an export records (config.eosTokenId, where generation stops), the same way for both
 * checkpoint formats, so that an HF and a mamba_ssm checkpoint of the same weights (with the same
 * side files) stop at the same token:
 *
 *   1. generation_config.json's `eos_token_id` (a list: its first id), when the checkpoint has one:
 *      what transformers' generate() uses, over config.json's;
 *   2. config.json's `eos_token_id` (HF configs; absent from mamba_ssm configs, and then so is the
 *      HF default 2 — config.ts);
 *   3. the tokenizer's `eos_token` (tokenizer_config.json, looked up in tokenizer.json), when the
 *      checkpoint has a tokenizer: GPT-NeoX's `<|endoftext|>` = 0 for the Mamba-2 checkpoints.
 *
 * A mamba_ssm checkpoint with none of these (state-spaces/mamba2-*: config.json and
 * pytorch_model.bin only) keeps no EOS, as mamba_ssm's own generate() does not stop either unless
 * given an eos_token_id; a tokenizer added to the model directory later still stops generation at
 * its EOS (the runtime also stops at the tokenizer's eos, src/runtime/decoder.ts stopIdSet).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mamba2Config } from '../package/config.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from '../package/meta.js';
import { ConfigError, parseConfigText } from './config.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** generation_config.json's eos id; undefined when there is no file or no eos_token_id; throws on a bad one. */
async function generationEos(dir: string, vocabSize: number): Promise<number | undefined> {
  const file = join(dir, GENERATION_CONFIG_FILE);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = parseConfigText(await readFile(file, 'utf8'), file);
  } catch (e) {
    throw new ConfigError(file, '', `cannot read the generation config: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(file, '', `expected a JSON object, got ${show(raw)}`);
  let v = (raw as Record<string, unknown>).eos_token_id;
  if (Array.isArray(v)) v = v[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize) {
    throw new ConfigError(file, 'eos_token_id', `expected a token id in [0, ${vocabSize}), got ${show(v)}`);
  }
  return v;
}

/** The id of tokenizer_config.json's eos_token in tokenizer.json; undefined when anything is missing. */
async function tokenizerEos(dir: string): Promise<number | undefined> {
  try {
    const cfg = JSON.parse(await readFile(join(dir, TOKENIZER_CONFIG_FILE), 'utf8')) as { eos_token?: unknown };
    const e = cfg.eos_token;
    const text =
      typeof e === 'string'
        ? e
        : e && typeof e === 'object' && typeof (e as { content?: unknown }).content === 'string'
          ? (e as { content: string }).content
          : undefined;
    if (text === undefined) return undefined;
    const tok = JSON.parse(await readFile(join(dir, TOKENIZER_FILE), 'utf8')) as {
      added_tokens?: { id?: unknown; content?: unknown }[];
      model?: { vocab?: unknown };
    };
    const added = tok.added_tokens?.find((t) => t.content === text)?.id;
    if (typeof added === 'number') return added;
    const vocab = tok.model?.vocab;
    if (Array.isArray(vocab)) {
      const i = vocab.findIndex((p) => Array.isArray(p) && p[0] === text); // Unigram: [piece, score]
      return i >= 0 ? i : undefined;
    }
    const id = vocab && typeof vocab === 'object' ? (vocab as Record<string, unknown>)[text] : undefined;
    return typeof id === 'number' ? id : undefined;
  } catch {
    return undefined; // no tokenizer, or one the runtime will report on when it loads it
  }
}

/** `config` with the EOS of the checkpoint directory `dir` (see the module doc). */
export async function withCheckpointEos(config: Mamba2Config, dir: string): Promise<Mamba2Config> {
  let eos = await generationEos(dir, config.vocabSize);
  if (eos === undefined && config.eosTokenId !== undefined) return config;
  if (eos === undefined) {
    const t = await tokenizerEos(dir);
    if (t !== undefined && Number.isInteger(t) && t >= 0 && t < config.vocabSize) eos = t;
  }
  return eos === undefined || eos === config.eosTokenId ? config : Object.freeze({ ...config, eosTokenId: eos });
}
