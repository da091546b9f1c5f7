/**
 * NVIDIA Nemotron-H (HF `NemotronHForCausalLM`, `model_type: "nemotron_h"`; docs/model.md §1.6):
 * a pattern of single-purpose pre-norm residual blocks — Mamba-2 (M), attention (*), MLP (-) and
 * mixture of experts (E) — with no feed-forward after the mixers and no muP scalars.
 *
 *   config   `hybrid_override_pattern` ("M-M*-…", the published configs) or the per-layer list
 *            `layers_block_type` / `layer_types` (HF 5.x names and the legacy ones); the Mamba-2
 *            width is mamba_num_heads·mamba_head_dim (not expand·hidden); dt clamped to
 *            time_step_limit; attention without rotary, scale 1/√head_dim; MLP up → relu² → down
 *            (intermediate_size); MoE: sigmoid router with e_score_correction_bias, grouped top-k
 *            (n_group, topk_group), norm_topk_prob, routed_scaling_factor, relu² experts of
 *            moe_intermediate_size (on a moe_latent_size projection when set) and one shared
 *            expert of moe_shared_expert_intermediate_size. The `mamba_*` spellings of the
 *            Mamba-2 keys (mamba_n_groups, mamba_d_conv, mamba_chunk_size, mamba_dt_limit,
 *            mamba_conv_bias) win over the plain ones, as in HF.
 *   names    backbone.embeddings, backbone.layers.i.{norm, mixer.*}: Mamba-2 in_proj…, attention
 *            {q,k,v,o}_proj, MLP {up,down}_proj, MoE gate.{weight, e_score_correction_bias},
 *            experts.{j}.{up,down}_proj, shared_experts.{up,down}_proj, fc{1,2}_latent_proj;
 *            backbone.norm_f, lm_head (never tied: HF's NemotronHForCausalLM ties nothing).
 * Where HF's port and NVIDIA's own code differ, the original wins (§1.6): dt is clamped to
 * time_step_limit (HF: to [time_step_min, ∞)), and routing outside the chosen groups is −∞.
 */
import type { Mamba2Config } from '../../package/config.js';
import { type HybridSpec, type LayerKind, type MoeConfig, moeOf } from '../../package/layers.js';
import { ConfigError, failIn, type KeyNames, pick, type RawFields, validateMamba2 } from '../config-core.js';
import { bool, checkAttention, kindsFromNames, mustBeFalse, positive, posInt, show } from './fields.js';
import type { Fail, Family, JsonObject } from './types.js';

/** Layer names of the list form (HF 5.x and the legacy ones), and the pattern letters. */
const LAYER_TYPES: Readonly<Record<string, LayerKind>> = {
  mamba: 'mamba2',
  linear_attention: 'mamba2',
  attention: 'attention',
  full_attention: 'attention',
  mlp: 'mlp',
  moe: 'moe',
};
const PATTERN: Readonly<Record<string, LayerKind>> = { M: 'mamba2', '*': 'attention', '-': 'mlp', E: 'moe' };

/** HF 5.x reads these `mamba_*` names first when a config has them (configuration_nemotron_h.py). */
const LEGACY: readonly [string, string][] = [
  ['mamba_n_groups', 'n_groups'],
  ['mamba_d_conv', 'conv_kernel'],
  ['mamba_chunk_size', 'chunk_size'],
  ['mamba_dt_limit', 'time_step_limit'],
  ['mamba_conv_bias', 'use_conv_bias'],
];

const KEYS: KeyNames = {
  dModel: 'hidden_size',
  vocabSize: 'vocab_size',
  dState: 'ssm_state_size',
  dConv: 'conv_kernel',
  headDim: 'mamba_head_dim',
  nHeads: 'mamba_num_heads',
  nGroups: 'n_groups',
  chunkSize: 'chunk_size',
  dtLimit: 'time_step_limit',
  bias: 'use_bias',
  convBias: 'use_conv_bias',
  normEps: 'layer_norm_epsilon',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
  padTokenId: 'pad_token_id',
};

/** transformers' `NemotronHConfig` defaults, applied to absent keys. */
const DEFAULTS: RawFields = {
  dModel: 4096,
  vocabSize: 131072,
  dState: 128,
  dConv: 4,
  headDim: 64,
  nHeads: 128,
  nGroups: 8,
  chunkSize: 128,
  dtLimit: [0, Infinity],
  bias: false,
  convBias: true,
  tieEmbeddings: false,
  normEps: 1e-5,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
};

function layerPlan(obj: JsonObject, fail: Fail): LayerKind[] {
  const listKey = ['layers_block_type', 'layer_types'].find((k) => obj[k] !== undefined && obj[k] !== null);
  let kinds: LayerKind[];
  let from: string;
  if (listKey) {
    kinds = kindsFromNames(obj[listKey], listKey, LAYER_TYPES, fail);
    from = listKey;
  } else {
    const p = obj.hybrid_override_pattern;
    if (typeof p !== 'string' || p.length === 0)
      fail('hybrid_override_pattern', `expected a pattern of M, *, - and E (or a layers_block_type list), got ${show(p)}`);
    kinds = [...(p as string)].map((ch, i) => {
      const k = PATTERN[ch];
      if (!k) fail('hybrid_override_pattern', `expected only M, *, - or E, got ${JSON.stringify(ch)} at position ${i}`);
      return k as LayerKind;
    });
    from = 'hybrid_override_pattern';
  }
  const n = obj.num_hidden_layers;
  if (n !== undefined && n !== null && n !== kinds.length)
    fail('num_hidden_layers', `expected ${kinds.length} (the length of ${from}), got ${show(n)}`);
  return kinds;
}

function moeConfig(obj: JsonObject, fail: Fail): MoeConfig {
  const E = posInt(obj.n_routed_experts ?? obj.num_local_experts ?? 8, 'n_routed_experts', fail);
  const topK = posInt(obj.num_experts_per_tok ?? 2, 'num_experts_per_tok', fail);
  const nGroup = posInt(obj.n_group ?? 1, 'n_group', fail);
  const topkGroup = posInt(obj.topk_group ?? 1, 'topk_group', fail);
  if (E % nGroup !== 0) fail('n_group', `expected a divisor of the ${E} routed experts, got ${nGroup}`);
  if (nGroup > 1 && E / nGroup < 2)
    fail('n_group', `expected at least two experts per group (a group scores its best two), got ${E / nGroup}`);
  if (topkGroup > nGroup) fail('topk_group', `expected at most n_group = ${nGroup}, got ${topkGroup}`);
  if (topK > topkGroup * (E / nGroup))
    fail('num_experts_per_tok', `expected at most the ${topkGroup * (E / nGroup)} experts of the chosen groups, got ${topK}`);
  const latent = obj.moe_latent_size ?? null;
  return Object.freeze({
    nExperts: E,
    topK,
    hidden: posInt(obj.moe_intermediate_size ?? 7688, 'moe_intermediate_size', fail),
    expert: 'relu2',
    router: 'sigmoid_grouped',
    nGroup,
    topkGroup,
    normTopK: bool(obj.norm_topk_prob ?? true, 'norm_topk_prob', fail),
    scale: positive(obj.routed_scaling_factor ?? 1, 'routed_scaling_factor', fail),
    scoreBias: true,
    latent: latent === null ? 0 : posInt(latent, 'moe_latent_size', fail),
    shared: Object.freeze({
      kind: 'relu2' as const,
      hidden: posInt(obj.moe_shared_expert_intermediate_size ?? 7688, 'moe_shared_expert_intermediate_size', fail),
      bias: false,
    }),
  });
}

function readConfig(obj0: JsonObject, file: string): Mamba2Config {
  const fail = failIn(file);
  const obj: JsonObject = { ...obj0 };
  for (const [legacy, key] of LEGACY) if (obj0[legacy] !== undefined && obj0[legacy] !== null) obj[key] = obj0[legacy];
  for (const [key, what] of [
    ['mamba_hidden_act', 'silu'],
    ['mlp_hidden_act', 'relu2'],
  ] as const) {
    const v = obj[key] ?? what;
    if (v !== what) fail(key, `expected ${JSON.stringify(what)}, got ${show(v)}: other activations are not supported`);
  }
  mustBeFalse(obj, 'tie_word_embeddings', fail, "a tied head is (HF's NemotronHForCausalLM never ties it)");
  mustBeFalse(obj, 'attention_bias', fail, 'attention biases are');
  mustBeFalse(obj, 'mlp_bias', fail, 'MLP biases are');
  if (obj.sliding_window !== undefined && obj.sliding_window !== null)
    fail('sliding_window', `expected null, got ${show(obj.sliding_window)}: sliding-window attention is not supported`);
  const layers = layerPlan(obj, fail);
  const { raw, names } = pick(obj, KEYS);
  const r: RawFields = { ...DEFAULTS, ...raw, nLayer: layers.length, format: 'hf' };
  names.nLayer = 'hybrid_override_pattern';
  names.dInner = 'mamba_num_heads·mamba_head_dim';
  if (typeof r.nHeads === 'number' && typeof r.headDim === 'number') r.dInner = r.nHeads * r.headDim; // not expand·hidden
  const base = validateMamba2(r, file, names);

  const has = (k: LayerKind): boolean => layers.includes(k);
  const heads = posInt(obj.num_attention_heads ?? 32, 'num_attention_heads', fail);
  const kv = posInt(obj.num_key_value_heads ?? heads, 'num_key_value_heads', fail);
  const hd = obj.head_dim ?? null;
  if (hd === null && base.dModel % heads !== 0)
    fail('num_attention_heads', `expected a divisor of hidden_size ${base.dModel} (head_dim absent), got ${heads}`);
  const headDim = posInt(hd ?? base.dModel / heads, 'head_dim', fail);
  const hybrid: HybridSpec = Object.freeze({
    family: 'nemotron_h',
    layers: Object.freeze(layers),
    ...(has('attention')
      ? {
          attention: checkAttention(
            {
              nHeads: heads,
              nKvHeads: kv,
              headDim,
              rotaryDim: 0,
              ropeTheta: 10000,
              convKernel: 0,
              qkvBias: false,
              outBias: false,
              softmaxScale: 1 / Math.sqrt(headDim),
              mlpDim: 0,
            },
            { heads: 'num_attention_heads', kv: 'num_key_value_heads', rotary: 'head_dim' },
            fail,
          ),
        }
      : {}),
    ...(has('mlp')
      ? {
          mlp: Object.freeze({
            kind: 'relu2' as const,
            hidden: posInt(obj.intermediate_size ?? 21504, 'intermediate_size', fail),
            bias: false,
          }),
        }
      : {}),
    ...(has('moe') ? { moe: moeConfig(obj, fail) } : {}),
    after: Object.freeze([]),
  });
  if (!has('mamba2') && !has('attention'))
    throw new ConfigError(file, 'hybrid_override_pattern', 'expected at least one M or * layer, got only feed-forward layers');
  return Object.freeze({ ...base, hybrid });
}

const mixer = (i: number): string => `backbone.layers.${i}.mixer`;

export const nemotronH: Family = {
  name: 'nemotron_h',
  format: 'hf',
  modelType: 'nemotron_h',
  architecture: 'NemotronHForCausalLM',
  readConfig,
  names: {
    top: () => ({ embedding: 'backbone.embeddings.weight', normF: 'backbone.norm_f.weight' }),
    norm: (_c, i) => `backbone.layers.${i}.norm.weight`,
    mamba: (_c, i) => mixer(i),
    attention: (_c, i) => {
      const m = mixer(i);
      return { q: `${m}.q_proj.weight`, k: `${m}.k_proj.weight`, v: `${m}.v_proj.weight`, attnOut: `${m}.o_proj.weight` };
    },
    mlp: (_c, i) => ({ up: `${mixer(i)}.up_proj.weight`, down: `${mixer(i)}.down_proj.weight` }),
    moe: (c, i) => {
      const m = mixer(i);
      const h = moeOf(c);
      const experts = (w: string): string[] => Array.from({ length: h.nExperts }, (_, j) => `${m}.experts.${j}.${w}.weight`);
      return {
        router: `${m}.gate.weight`,
        scoreBias: `${m}.gate.e_score_correction_bias`,
        ...(h.latent > 0 ? { latentIn: `${m}.fc1_latent_proj.weight`, latentOut: `${m}.fc2_latent_proj.weight` } : {}),
        up: { name: `${m}.experts.up_proj`, parts: experts('up_proj') }, // HF 5.x's name for the stacked tensor
        down: { name: `${m}.experts.down_proj`, parts: experts('down_proj') },
        shared: { up: `${m}.shared_experts.up_proj.weight`, down: `${m}.shared_experts.down_proj.weight` },
      };
    },
  },
};
