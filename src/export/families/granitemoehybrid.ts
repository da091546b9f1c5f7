/**
 * IBM Granite-4.0-H (HF `GraniteMoeHybridForCausalLM`, `model_type: "granitemoehybrid"`;
 * docs/model.md §1.5): Bamba's Mamba-2 layers (`mamba_*` keys) and grouped-query attention layers
 * in a per-layer list, every mixer followed by a shared SwiGLU MLP and, in the MoE models, a routed
 * mixture of experts on the same normalised input; muP-style multipliers throughout.
 *
 *   config   layer_types / layers_block_type ("mamba" | "linear_attention" | "attention" |
 *            "full_attention"); attention: position_embedding_type "nope" (or null: no rotary, the
 *            published models) or "rope" (rotary on the whole head, rope_parameters.rope_theta),
 *            softmax scale = attention_multiplier; shared_intermediate_size (shared MLP);
 *            num_local_experts (0: dense), num_experts_per_tok, intermediate_size (each expert);
 *            embedding_multiplier, residual_multiplier, logits_scaling (logits are divided by it).
 *   names    model.embed_tokens, model.layers.i.{input_layernorm, mamba.*, self_attn.{q,k,v,o}_proj,
 *            post_attention_layernorm, shared_mlp.{input,output}_linear,
 *            block_sparse_moe.{router.layer, input_linear [E,2F,D], output_linear [E,D,F]}},
 *            model.norm, lm_head.
 * The gated RMSNorm is grouped by mamba_n_groups as in the original (HF 5.18 ignores the groups, §6.2).
 */
import type { Mamba2Config } from '../../package/config.js';
import type { FfnKind, HybridSpec, LayerKind, MoeConfig } from '../../package/layers.js';
import { failIn, type RawFields } from '../config-core.js';
import { checkAttention, kindsFromNames, mustBeFalse, nonNegInt, positive, posInt, ropeFields, show } from './fields.js';
import { mambaPrefixedPart } from './mamba-prefixed.js';
import type { Family, JsonObject } from './types.js';

/** transformers' `GraniteMoeHybridConfig` defaults, applied to absent keys. */
const DEFAULTS: RawFields = {
  dModel: 4096,
  nLayer: 32,
  vocabSize: 32000,
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
  normEps: 1e-6,
  bosTokenId: 1,
  eosTokenId: 2,
};

/** HF's names for the layer types, current and legacy (configuration_utils `_LEGACY_LAYER_TYPE_REMAP`). */
const LAYER_TYPES: Readonly<Record<string, LayerKind>> = {
  mamba: 'mamba2',
  linear_attention: 'mamba2',
  attention: 'attention',
  full_attention: 'attention',
};

function layerPlan(obj: JsonObject, nLayer: number, fail: (k: string, d: string) => never): LayerKind[] {
  const key = obj.layer_types !== undefined && obj.layer_types !== null ? 'layer_types' : 'layers_block_type';
  const list = obj[key];
  if (list === undefined || list === null) return Array.from({ length: nLayer }, () => 'mamba2'); // HF: all Mamba-2
  const kinds = kindsFromNames(list, key, LAYER_TYPES, fail);
  if (kinds.length !== nLayer) fail(key, `expected ${nLayer} entries (num_hidden_layers), got ${kinds.length}`);
  return kinds;
}

function readConfig(obj: JsonObject, file: string): Mamba2Config {
  const base = mambaPrefixedPart(obj, file, DEFAULTS);
  const fail = failIn(file);
  const layers = layerPlan(obj, base.nLayer, fail);
  const heads = posInt(obj.num_attention_heads ?? 32, 'num_attention_heads', fail);
  const kv = posInt(obj.num_key_value_heads ?? heads, 'num_key_value_heads', fail);
  if (base.dModel % heads !== 0 && obj.head_dim === undefined) {
    fail('num_attention_heads', `expected a divisor of hidden_size ${base.dModel} (head_dim = hidden_size / heads), got ${heads}`);
  }
  const headDim = posInt(obj.head_dim ?? base.dModel / heads, 'head_dim', fail);
  mustBeFalse(obj, 'attention_bias', fail, 'attention biases are');
  const pos = obj.position_embedding_type ?? 'nope';
  if (pos !== 'nope' && pos !== 'rope') fail('position_embedding_type', `expected "nope", "rope" or null, got ${show(pos)}`);
  const rope = pos === 'rope' ? ropeFields(obj, fail, { theta: 10000, factor: 1 }) : { theta: 10000 }; // HF's rotary covers the whole head
  const attention = checkAttention(
    {
      nHeads: heads,
      nKvHeads: kv,
      headDim,
      rotaryDim: pos === 'rope' ? headDim : 0,
      ropeTheta: rope.theta,
      convKernel: 0,
      qkvBias: false,
      outBias: false,
      softmaxScale: positive(obj.attention_multiplier ?? 1, 'attention_multiplier', fail),
      mlpDim: 0,
    },
    { heads: 'num_attention_heads', kv: 'num_key_value_heads', rotary: 'head_dim' },
    fail,
  );
  const mlp = Object.freeze({
    kind: 'gate_up' as const,
    hidden: posInt(obj.shared_intermediate_size ?? 1024, 'shared_intermediate_size', fail),
    bias: false,
  });
  const nExperts = nonNegInt(obj.num_local_experts ?? 8, 'num_local_experts', fail);
  let moe: MoeConfig | undefined;
  if (nExperts > 0) {
    const topK = posInt(obj.num_experts_per_tok ?? 2, 'num_experts_per_tok', fail);
    if (topK > nExperts) fail('num_experts_per_tok', `expected at most num_local_experts = ${nExperts}, got ${topK}`);
    moe = Object.freeze({
      nExperts,
      topK,
      hidden: posInt(obj.intermediate_size ?? 11008, 'intermediate_size', fail),
      expert: 'gate_up',
      router: 'softmax_topk',
      nGroup: 1,
      topkGroup: 1,
      normTopK: false,
      scale: 1,
      scoreBias: false,
      latent: 0,
    });
  }
  const after: FfnKind[] = moe ? ['mlp', 'moe'] : ['mlp'];
  const hybrid: HybridSpec = Object.freeze({
    family: 'granitemoehybrid',
    layers: Object.freeze(layers),
    attention,
    mlp,
    ...(moe ? { moe } : {}),
    after: Object.freeze(after),
    scalars: Object.freeze({
      embedding: positive(obj.embedding_multiplier ?? 1, 'embedding_multiplier', fail),
      residual: positive(obj.residual_multiplier ?? 1, 'residual_multiplier', fail),
      logitsDivisor: positive(obj.logits_scaling ?? 1, 'logits_scaling', fail),
    }),
  });
  return Object.freeze({ ...base, hybrid });
}

const layer = (i: number): string => `model.layers.${i}`;

export const granite: Family = {
  name: 'granitemoehybrid',
  format: 'hf',
  modelType: 'granitemoehybrid',
  architecture: 'GraniteMoeHybridForCausalLM',
  readConfig,
  names: {
    top: () => ({ embedding: 'model.embed_tokens.weight', normF: 'model.norm.weight' }),
    norm: (_c, i) => `${layer(i)}.input_layernorm.weight`,
    mamba: (_c, i) => `${layer(i)}.mamba`,
    attention: (_c, i) => {
      const a = `${layer(i)}.self_attn`;
      return { q: `${a}.q_proj.weight`, k: `${a}.k_proj.weight`, v: `${a}.v_proj.weight`, attnOut: `${a}.o_proj.weight` };
    },
    mlp: (_c, i) => ({ fc1: `${layer(i)}.shared_mlp.input_linear.weight`, down: `${layer(i)}.shared_mlp.output_linear.weight` }),
    afterNorm: (_c, i) => `${layer(i)}.post_attention_layernorm.weight`,
    moe: (_c, i) => {
      const m = `${layer(i)}.block_sparse_moe`;
      return {
        router: `${m}.router.layer.weight`,
        up: { name: `${m}.input_linear.weight`, parts: [`${m}.input_linear.weight`] },
        down: { name: `${m}.output_linear.weight`, parts: [`${m}.output_linear.weight`] },
      };
    },
  },
};
