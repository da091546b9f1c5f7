import { describe, expect, it } from 'vitest';
import { expectConfigError } from '../../../test/helpers/errors.js';
import { hfConfigToMamba2 } from '../config.js';
import type { Mamba2Config } from '../../package/config.js';
import { ffnAfter, hybridOf, layerKinds, scalarsOf, statefulLayers } from '../../package/layers.js';
import { ioTable } from '../../package/io.js';
import { expectedTensors, weightKeys } from '../weight-names.js';

const nemotron = (over: Record<string, unknown> = {}): Mamba2Config =>
  hfConfigToMamba2(
    {
      model_type: 'nemotron_h',
      hidden_size: 64,
      vocab_size: 96,
      hybrid_override_pattern: 'M-*E',
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 24,
      intermediate_size: 80,
      mamba_num_heads: 6,
      mamba_head_dim: 16,
      ssm_state_size: 16,
      n_groups: 2,
      chunk_size: 16,
      n_routed_experts: 8,
      num_experts_per_tok: 2,
      moe_intermediate_size: 32,
      moe_shared_expert_intermediate_size: 48,
      n_group: 2,
      topk_group: 1,
      routed_scaling_factor: 2.5,
      ...over,
    },
    'nemotron.json',
  );

describe('Nemotron-H configs (model_type "nemotron_h")', () => {
  it('reads the pattern, the Mamba-2 width from heads × head_dim, relu² MLP, NoPE attention and the grouped sigmoid router', () => {
    const c = nemotron();
    expect(layerKinds(c)).toEqual(['mamba2', 'mlp', 'attention', 'moe']);
    expect(c).toMatchObject({ nLayer: 4, nHeads: 6, headDim: 16, dInner: 96, dSsm: 96, expand: 1.5, nGroups: 2, chunkSize: 16 });
    expect(c.dInProj).toBe(2 * 96 + 2 * 2 * 16 + 6);
    const h = hybridOf(c)!;
    expect(h.attention).toMatchObject({ nHeads: 4, nKvHeads: 2, headDim: 24, rotaryDim: 0, softmaxScale: 1 / Math.sqrt(24) });
    expect(h.mlp).toEqual({ kind: 'relu2', hidden: 80, bias: false });
    expect(h.moe).toEqual({
      nExperts: 8,
      topK: 2,
      hidden: 32,
      expert: 'relu2',
      router: 'sigmoid_grouped',
      nGroup: 2,
      topkGroup: 1,
      normTopK: true,
      scale: 2.5,
      scoreBias: true,
      latent: 0,
      shared: { kind: 'relu2', hidden: 48, bias: false },
    });
    expect(ffnAfter(c)).toEqual([]);
    expect(scalarsOf(c)).toEqual({ embedding: 1, residual: 1, logitsDivisor: 1 });
    expect(statefulLayers(c)).toEqual([0, 2]);
    expect(ioTable(c).inputs.map((e) => e.name)).toEqual(['input_ids', 'past_conv.0', 'past_ssm.0', 'past_key.2', 'past_value.2']);
  });

  it('the per-layer list (HF 5.x and legacy names) equals the pattern; the mamba_* spellings win; dt limits as configured', () => {
    const a = nemotron({ time_step_limit: [0.001, 0.2], time_step_min: 0.01 });
    const b = nemotron({
      hybrid_override_pattern: undefined,
      layers_block_type: ['mamba', 'mlp', 'attention', 'moe'],
      mamba_n_groups: 3,
      n_groups: 2,
      mamba_num_heads: 6,
      mamba_dt_limit: [0.001, 0.2],
    });
    expect(layerKinds(b)).toEqual(layerKinds(a));
    expect(b.nGroups).toBe(3);
    expect(a.dtLimit).toEqual([0.001, 0.2]); // time_step_limit, not [time_step_min, ∞) as HF's port
    expect(layerKinds(nemotron({ layer_types: ['linear_attention', 'full_attention'], hybrid_override_pattern: 'MM' }))).toEqual([
      'mamba2',
      'attention',
    ]);
  });

  it('keeps the published checkpoint names under backbone., experts one tensor each, a latent projection when set', () => {
    const c = nemotron({ moe_latent_size: 40 });
    expect(hybridOf(c)!.moe!.latent).toBe(40);
    expect(weightKeys(c)).toEqual({ embedding: 'backbone.embeddings.weight', normF: 'backbone.norm_f.weight', lmHead: 'lm_head.weight' });
    const t = expectedTensors(c).map((x) => `${x.key} ${x.shape.join('x')}`);
    expect(t).toContain('backbone.layers.0.mixer.in_proj.weight 262x64');
    expect(t).toContain('backbone.layers.0.mixer.out_proj.weight 64x96');
    expect(t).toContain('backbone.layers.1.mixer.up_proj.weight 80x64');
    expect(t).toContain('backbone.layers.2.mixer.q_proj.weight 96x64');
    expect(t.filter((x) => x.startsWith('backbone.layers.3.'))).toEqual([
      'backbone.layers.3.norm.weight 64',
      'backbone.layers.3.mixer.gate.weight 8x64',
      'backbone.layers.3.mixer.gate.e_score_correction_bias 8',
      'backbone.layers.3.mixer.fc1_latent_proj.weight 40x64',
      ...Array.from({ length: 8 }, (_, j) => `backbone.layers.3.mixer.experts.${j}.up_proj.weight 32x40`),
      ...Array.from({ length: 8 }, (_, j) => `backbone.layers.3.mixer.experts.${j}.down_proj.weight 40x32`),
      'backbone.layers.3.mixer.fc2_latent_proj.weight 64x40',
      'backbone.layers.3.mixer.shared_experts.up_proj.weight 48x64',
      'backbone.layers.3.mixer.shared_experts.down_proj.weight 64x48',
    ]);
  });

  it('names the key of every refusal, with expected vs got', () => {
    expectConfigError(
      () => nemotron({ hybrid_override_pattern: 'M-X' }),
      '"hybrid_override_pattern"',
      'only M, *, - or E, got "X" at position 2',
    );
    expectConfigError(() => nemotron({ hybrid_override_pattern: undefined }), '"hybrid_override_pattern"', 'expected a pattern');
    expectConfigError(
      () => nemotron({ num_hidden_layers: 5 }),
      '"num_hidden_layers"',
      'expected 4 (the length of hybrid_override_pattern), got 5',
    );
    expectConfigError(() => nemotron({ layers_block_type: ['mamba', 'conv'] }), '"layers_block_type[1]"', 'got "conv"');
    expectConfigError(() => nemotron({ hybrid_override_pattern: '--' }), '"hybrid_override_pattern"', 'at least one M or *');
    expectConfigError(() => nemotron({ mlp_hidden_act: 'silu' }), '"mlp_hidden_act"', 'expected "relu2", got "silu"');
    expectConfigError(() => nemotron({ tie_word_embeddings: true }), '"tie_word_embeddings"', 'expected false, got true');
    expectConfigError(() => nemotron({ sliding_window: 4096 }), '"sliding_window"', 'expected null, got 4096');
    expectConfigError(() => nemotron({ n_group: 3 }), '"n_group"', 'divisor of the 8 routed experts, got 3');
    expectConfigError(() => nemotron({ n_group: 8 }), '"n_group"', 'at least two experts per group');
    expectConfigError(() => nemotron({ topk_group: 3 }), '"topk_group"', 'at most n_group = 2, got 3');
    expectConfigError(
      () => nemotron({ num_experts_per_tok: 5 }),
      '"num_experts_per_tok"',
      'at most the 4 experts of the chosen groups, got 5',
    );
    expectConfigError(() => nemotron({ mamba_num_heads: 5 }), '"n_groups"', 'divisor of the 5 heads');
    expectConfigError(() => nemotron({ routed_scaling_factor: -1 }), '"routed_scaling_factor"');
    expectConfigError(() => nemotron({ num_key_value_heads: 3 }), '"num_key_value_heads"');
  });
});
