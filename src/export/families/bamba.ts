/**
 * IBM Bamba (HF `BambaForCausalLM`, `model_type: "bamba"`; docs/model.md §1.4, §4.2):
 *
 *   config   the Mamba-2 layers from `mamba_*` keys; `attn_layer_indices` are grouped-query
 *            attention layers with rotary on the first R = head_dim·partial_rotary_factor dims
 *            (HF hard-codes attention_bias = mlp_bias = False and the factor 0.5); a SwiGLU
 *            feed-forward (gate/up/down, `intermediate_size`) after every mixer.
 *   names    model.embed_tokens, model.layers.i.{input_layernorm, mamba.*, self_attn.{q,k,v,o}_proj,
 *            pre_ff_layernorm, feed_forward.{gate,up,down}_proj}, model.final_layernorm, lm_head.
 */
import type { Mamba2Config } from '../../package/config.js';
import type { HybridSpec } from '../../package/layers.js';
import { failIn, type RawFields } from '../config-core.js';
import { checkAttention, kindsFromIndices, posInt, ropeFields } from './fields.js';
import { mambaPrefixedPart } from './mamba-prefixed.js';
import type { Family, JsonObject } from './types.js';

/** transformers' `BambaConfig.__init__` defaults (Bamba-9B), applied to absent keys. */
const DEFAULTS: RawFields = {
  dModel: 4096,
  nLayer: 32,
  vocabSize: 128000,
  dState: 256,
  dConv: 4,
  expand: 2,
  nHeads: 128,
  nGroups: 1,
  chunkSize: 256,
  dtLimit: [0, Infinity],
  bias: false,
  convBias: true,
  tieEmbeddings: false,
  normEps: 1e-5,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
};

function readConfig(obj: JsonObject, file: string): Mamba2Config {
  const base = mambaPrefixedPart(obj, file, DEFAULTS);
  const fail = failIn(file);
  const layers = kindsFromIndices(obj.attn_layer_indices, 'attn_layer_indices', base.nLayer, fail);
  const heads = posInt(obj.num_attention_heads ?? 32, 'num_attention_heads', fail);
  const kv = posInt(obj.num_key_value_heads ?? heads, 'num_key_value_heads', fail);
  if (base.dModel % heads !== 0 && obj.head_dim === undefined) {
    fail('num_attention_heads', `expected a divisor of hidden_size ${base.dModel} (head_dim = hidden_size / heads), got ${heads}`);
  }
  const headDim = posInt(obj.head_dim ?? base.dModel / heads, 'head_dim', fail);
  const rope = ropeFields(obj, fail, { theta: 10000, factor: 0.5 });
  const attention = checkAttention(
    {
      nHeads: heads,
      nKvHeads: kv,
      headDim,
      rotaryDim: Math.floor(headDim * rope.factor),
      ropeTheta: rope.theta,
      convKernel: 0,
      qkvBias: false,
      outBias: false,
      softmaxScale: 1 / Math.sqrt(headDim),
      mlpDim: 0,
    },
    { heads: 'num_attention_heads', kv: 'num_key_value_heads', rotary: 'partial_rotary_factor' },
    fail,
  );
  const mlp = Object.freeze({
    kind: 'swiglu' as const,
    hidden: posInt(obj.intermediate_size ?? 14336, 'intermediate_size', fail),
    bias: false,
  });
  const hybrid: HybridSpec = Object.freeze({ family: 'bamba', layers: Object.freeze(layers), attention, mlp });
  return Object.freeze({ ...base, hybrid });
}

export const bamba: Family = {
  name: 'bamba',
  format: 'hf',
  modelType: 'bamba',
  architecture: 'BambaForCausalLM',
  readConfig,
  names: {
    top: () => ({ embedding: 'model.embed_tokens.weight', normF: 'model.final_layernorm.weight' }),
    norm: (_c, i) => `model.layers.${i}.input_layernorm.weight`,
    mamba: (_c, i) => `model.layers.${i}.mamba`,
    attention: (_c, i) => {
      const a = `model.layers.${i}.self_attn`;
      return { q: `${a}.q_proj.weight`, k: `${a}.k_proj.weight`, v: `${a}.v_proj.weight`, attnOut: `${a}.o_proj.weight` };
    },
    mlp: (_c, i) => {
      const f = `model.layers.${i}.feed_forward`;
      return { gate: `${f}.gate_proj.weight`, up: `${f}.up_proj.weight`, down: `${f}.down_proj.weight` };
    },
    afterNorm: (_c, i) => `model.layers.${i}.pre_ff_layernorm.weight`,
  },
};
