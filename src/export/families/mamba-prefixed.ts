/**
 * The Mamba-2 part of the HF hybrid configs that spell it with `mamba_*` keys (BambaConfig and the
 * GraniteMoeHybridConfig derived from it): key names, `mamba_d_head: "auto"` = expand·hidden/heads.
 */
import type { Mamba2Config } from '../../package/config.js';
import { checkActivation, ConfigError, type KeyNames, pick, type RawFields, validateMamba2 } from '../config-core.js';
import type { JsonObject } from './types.js';

const KEYS: KeyNames = {
  dModel: 'hidden_size',
  nLayer: 'num_hidden_layers',
  vocabSize: 'vocab_size',
  dState: 'mamba_d_state',
  dConv: 'mamba_d_conv',
  expand: 'mamba_expand',
  headDim: 'mamba_d_head',
  nHeads: 'mamba_n_heads',
  nGroups: 'mamba_n_groups',
  chunkSize: 'mamba_chunk_size',
  dtLimit: 'time_step_limit',
  bias: 'mamba_proj_bias',
  convBias: 'mamba_conv_bias',
  tieEmbeddings: 'tie_word_embeddings',
  normEps: 'rms_norm_eps',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
  padTokenId: 'pad_token_id',
};

/** The `mamba_*` fields of `obj` over the family's `__init__` defaults, validated (errors name `file`). */
export function mambaPrefixedPart(obj: JsonObject, file: string, defaults: RawFields): Mamba2Config {
  checkActivation(obj, 'hidden_act', file);
  const { raw, names } = pick(obj, KEYS);
  const r: RawFields = { ...defaults, ...raw, format: 'hf' };
  if (r.headDim === undefined || r.headDim === 'auto') {
    const [e, d, h] = [r.expand, r.dModel, r.nHeads];
    if (typeof e === 'number' && typeof d === 'number' && typeof h === 'number' && !Number.isInteger((e * d) / h)) {
      throw new ConfigError(
        file,
        'mamba_n_heads',
        `expected a divisor of mamba_expand·hidden_size = ${e * d} (mamba_d_head "auto"), got ${h}`,
      );
    }
    r.headDim = typeof e === 'number' && typeof d === 'number' && typeof h === 'number' ? (e * d) / h : undefined;
  }
  return validateMamba2(r, file, names);
}
