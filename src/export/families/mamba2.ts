/**
 * HF `Mamba2ForCausalLM` (`model_type: "mamba2"`): a pure Mamba-2 model (docs/model.md §1.1-§1.2,
 * §4.1, §4.3). `num_heads` is stored, not derived (§6.14); HF's load hook renames `embedding.` to
 * `embeddings.`. norm_before_gate is ignored by HF (hard-coded False, §6.3); HF has no D_has_hdim / d_ssm.
 */
import { checkActivation, type KeyNames, pick, type RawFields, validateMamba2 } from '../config-core.js';
import type { Family } from './types.js';

const KEYS: KeyNames = {
  dModel: 'hidden_size',
  nLayer: 'num_hidden_layers',
  vocabSize: 'vocab_size',
  dState: 'state_size',
  dConv: 'conv_kernel',
  expand: 'expand',
  headDim: 'head_dim',
  nHeads: 'num_heads',
  nGroups: 'n_groups',
  chunkSize: 'chunk_size',
  dtLimit: 'time_step_limit',
  rmsNorm: 'rms_norm',
  bias: 'use_bias',
  convBias: 'use_conv_bias',
  tieEmbeddings: 'tie_word_embeddings',
  normEps: 'layer_norm_epsilon',
  residualInFp32: 'residual_in_fp32',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
  padTokenId: 'pad_token_id',
};

/** transformers' `Mamba2Config.__init__` defaults (configuration_mamba2.py), applied to absent keys. */
const DEFAULTS: RawFields = {
  dModel: 4096,
  nLayer: 64,
  vocabSize: 32768,
  dState: 128,
  dConv: 4,
  expand: 2,
  headDim: 64,
  nHeads: 128,
  nGroups: 8,
  chunkSize: 256,
  dtLimit: [0, Infinity],
  rmsNorm: true,
  bias: false,
  convBias: true,
  tieEmbeddings: false,
  normEps: 1e-5,
  residualInFp32: true,
  bosTokenId: 0,
  eosTokenId: 2,
  padTokenId: 1,
};

export const mamba2: Family = {
  name: 'mamba2',
  format: 'hf',
  modelType: 'mamba2',
  architecture: 'Mamba2ForCausalLM',
  readConfig(obj, file) {
    checkActivation(obj, 'hidden_act', file);
    const { raw, names } = pick(obj, KEYS);
    if (raw.nHeads === undefined) names.nHeads = 'num_heads (absent, so the HF default 128)';
    return validateMamba2({ ...DEFAULTS, ...raw, format: 'hf' }, file, names);
  },
  names: {
    top: () => ({ embedding: 'backbone.embeddings.weight', normF: 'backbone.norm_f.weight' }),
    norm: (_c, i) => `backbone.layers.${i}.norm.weight`,
    mamba: (_c, i) => `backbone.layers.${i}.mixer`,
  },
};
