import { describe, expect, it } from 'vitest';
import { expectConfigError } from '../../../test/helpers/errors.js';
import { hfConfigToMamba2 } from '../config.js';
import type { Mamba2Config } from '../../package/config.js';
import { ffnAfter, hybridOf, layerKinds, scalarsOf } from '../../package/layers.js';
import { ioTable } from '../../package/io.js';
import { expectedTensors, weightKeys } from '../weight-names.js';

const granite = (over: Record<string, unknown> = {}): Mamba2Config =>
  hfConfigToMamba2(
    {
      model_type: 'granitemoehybrid',
      hidden_size: 64,
      num_hidden_layers: 4,
      vocab_size: 96,
      layer_types: ['mamba', 'attention', 'mamba', 'mamba'],
      num_attention_heads: 4,
      num_key_value_heads: 2,
      shared_intermediate_size: 96,
      num_local_experts: 0,
      mamba_n_heads: 8,
      mamba_d_head: 16,
      mamba_d_state: 16,
      mamba_chunk_size: 16,
      embedding_multiplier: 12,
      residual_multiplier: 0.22,
      attention_multiplier: 0.0078125,
      logits_scaling: 8,
      ...over,
    },
    'granite.json',
  );

describe('Granite-4.0-H configs (model_type "granitemoehybrid")', () => {
  it('reads the layer list, NoPE GQA attention with attention_multiplier as the scale, the shared MLP and the muP scalars', () => {
    const c = granite();
    expect(c).toMatchObject({
      format: 'hf',
      dModel: 64,
      nLayer: 4,
      nHeads: 8,
      headDim: 16,
      dInner: 128,
      normEps: 1e-6,
      tieEmbeddings: false,
    });
    expect(layerKinds(c)).toEqual(['mamba2', 'attention', 'mamba2', 'mamba2']);
    expect(hybridOf(c)).toMatchObject({
      family: 'granitemoehybrid',
      attention: { nHeads: 4, nKvHeads: 2, headDim: 16, rotaryDim: 0, softmaxScale: 0.0078125, qkvBias: false },
      mlp: { kind: 'gate_up', hidden: 96, bias: false },
    });
    expect(hybridOf(c)!.moe).toBeUndefined();
    expect(ffnAfter(c)).toEqual(['mlp']);
    expect(scalarsOf(c)).toEqual({ embedding: 12, residual: 0.22, logitsDivisor: 8 });
  });

  it('accepts HF 5.x layer type names and layers_block_type; rope covers the whole head', () => {
    const c = granite({
      layer_types: undefined,
      layers_block_type: ['linear_attention', 'full_attention', 'full_attention', 'linear_attention'],
      position_embedding_type: 'rope',
      rope_parameters: { rope_type: 'default', rope_theta: 5000 },
    });
    expect(layerKinds(c)).toEqual(['mamba2', 'attention', 'attention', 'mamba2']);
    expect(hybridOf(c)!.attention).toMatchObject({ rotaryDim: 16, ropeTheta: 5000 });
  });

  it('MoE: experts after every mixer with the shared MLP, softmax over the top-k; names of the published checkpoints', () => {
    const c = granite({ num_local_experts: 8, num_experts_per_tok: 3, intermediate_size: 32 });
    expect(hybridOf(c)!.moe).toEqual({
      nExperts: 8,
      topK: 3,
      hidden: 32,
      expert: 'gate_up',
      router: 'softmax_topk',
      nGroup: 1,
      topkGroup: 1,
      normTopK: false,
      scale: 1,
      scoreBias: false,
      latent: 0,
    });
    expect(ffnAfter(c)).toEqual(['mlp', 'moe']);
    expect(weightKeys(c)).toEqual({ embedding: 'model.embed_tokens.weight', normF: 'model.norm.weight', lmHead: 'lm_head.weight' });
    const layer1 = expectedTensors(c)
      .filter((t) => t.layer === 1)
      .map((t) => `${t.key} ${t.shape.join('x')}`);
    expect(layer1).toEqual([
      'model.layers.1.input_layernorm.weight 64',
      'model.layers.1.self_attn.q_proj.weight 64x64',
      'model.layers.1.self_attn.k_proj.weight 32x64',
      'model.layers.1.self_attn.v_proj.weight 32x64',
      'model.layers.1.self_attn.o_proj.weight 64x64',
      'model.layers.1.post_attention_layernorm.weight 64',
      'model.layers.1.shared_mlp.input_linear.weight 192x64',
      'model.layers.1.shared_mlp.output_linear.weight 64x96',
      'model.layers.1.block_sparse_moe.router.layer.weight 8x64',
      'model.layers.1.block_sparse_moe.input_linear.weight 8x64x64',
      'model.layers.1.block_sparse_moe.output_linear.weight 8x64x32',
    ]);
    expect(expectedTensors(c).some((t) => t.key === 'model.layers.0.mamba.in_proj.weight')).toBe(true);
    expect(ioTable(c).inputs.map((e) => e.name)).toContain('past_key.1');
  });

  it('defaults as GraniteMoeHybridConfig: all Mamba-2 layers, 8 experts top-2, scalars 1', () => {
    const c = granite({
      layer_types: undefined,
      num_local_experts: undefined,
      embedding_multiplier: undefined,
      residual_multiplier: undefined,
    });
    expect(layerKinds(c)).toEqual(['mamba2', 'mamba2', 'mamba2', 'mamba2']);
    expect(hybridOf(c)!.moe).toMatchObject({ nExperts: 8, topK: 2, hidden: 11008 });
    expect(scalarsOf(c)).toMatchObject({ embedding: 1, residual: 1 });
  });

  it('names the key of every refusal, with expected vs got', () => {
    expectConfigError(
      () => granite({ layer_types: ['mamba', 'attention'] }),
      '"layer_types"',
      'expected 4 entries (num_hidden_layers), got 2',
    );
    expectConfigError(() => granite({ layer_types: ['mamba', 'conv', 'mamba', 'mamba'] }), '"layer_types[1]"', 'got "conv"');
    expectConfigError(
      () => granite({ position_embedding_type: 'alibi' }),
      '"position_embedding_type"',
      'expected "nope", "rope" or null, got "alibi"',
    );
    expectConfigError(() => granite({ attention_bias: true }), '"attention_bias"', 'expected false, got true');
    expectConfigError(() => granite({ residual_multiplier: 0 }), '"residual_multiplier"', 'positive finite number, got 0');
    expectConfigError(() => granite({ logits_scaling: 'x' }), '"logits_scaling"');
    expectConfigError(
      () => granite({ num_local_experts: 2, num_experts_per_tok: 3 }),
      '"num_experts_per_tok"',
      'at most num_local_experts = 2, got 3',
    );
    expectConfigError(() => granite({ num_key_value_heads: 3 }), '"num_key_value_heads"', 'divisor of the 4 query heads, got 3');
    expectConfigError(() => granite({ mamba_d_head: 'auto', mamba_n_heads: 6 }), '"mamba_n_heads"');
    expectConfigError(
      () => granite({ position_embedding_type: 'rope', rope_parameters: { rope_type: 'yarn' } }),
      '"rope_parameters.rope_type"',
      'RoPE scaling is not supported',
    );
    expectConfigError(() => granite({ hidden_act: 'gelu' }), '"hidden_act"');
  });
});
