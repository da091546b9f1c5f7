import { describe, expect, it } from 'vitest';
import { expectConfigError } from '../../test/helpers/errors.js';
import { hfConfigToMamba2, mambaSsmConfigToMamba2 } from './config.js';
import type { Mamba2Config } from '../package/config.js';
import { hybridOf, layerKinds } from '../package/layers.js';
import { ioTable } from '../package/io.js';
import { loadPreset } from './presets.js';
import { expectedTensors, layerWeightKeys, weightKeys } from './weight-names.js';

const bamba = (over: Record<string, unknown> = {}): Mamba2Config =>
  hfConfigToMamba2(
    {
      model_type: 'bamba',
      hidden_size: 64,
      num_hidden_layers: 4,
      vocab_size: 96,
      intermediate_size: 128,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      attn_layer_indices: [1],
      mamba_n_heads: 8,
      mamba_d_head: 16,
      mamba_d_state: 16,
      mamba_chunk_size: 16,
      ...over,
    },
    'bamba.json',
  );
const ssm = (over: Record<string, unknown> = {}, attn: Record<string, unknown> = {}): Mamba2Config =>
  mambaSsmConfigToMamba2(
    {
      d_model: 256,
      n_layer: 4,
      vocab_size: 1000,
      ssm_cfg: { layer: 'Mamba2', d_state: 16 },
      attn_layer_idx: [2],
      attn_cfg: { causal: true, num_heads: 8, ...attn },
      ...over,
    },
    'ssm.json',
  );

describe('Bamba configs (model_type "bamba")', () => {
  it('reads the Mamba-2 part from mamba_* keys and the attention / SwiGLU parts', () => {
    const c = bamba({ rope_parameters: { rope_type: 'default', rope_theta: 5000, partial_rotary_factor: 0.5 } });
    expect(c).toMatchObject({
      format: 'hf',
      dModel: 64,
      nLayer: 4,
      nHeads: 8,
      headDim: 16,
      dInner: 128,
      dState: 16,
      chunkSize: 16,
      tieEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: 0,
    });
    expect(hybridOf(c)).toEqual({
      family: 'bamba',
      layers: ['mamba2', 'attention', 'mamba2', 'mamba2'],
      attention: {
        nHeads: 4,
        nKvHeads: 2,
        headDim: 16,
        rotaryDim: 8,
        ropeTheta: 5000,
        convKernel: 0,
        qkvBias: false,
        outBias: false,
        softmaxScale: 0.25,
        mlpDim: 0,
      },
      mlp: { kind: 'swiglu', hidden: 128, bias: false },
    });
    expect(Object.isFrozen(hybridOf(c))).toBe(true);
  });

  it('applies BambaConfig defaults: mamba_d_head "auto", partial rotary 0.5, theta 10000, kv heads = heads when null', () => {
    const c = bamba({ mamba_d_head: 'auto', num_key_value_heads: null, rope_parameters: undefined });
    expect(c.headDim).toBe(16);
    expect(hybridOf(c)!.attention).toMatchObject({ nKvHeads: 4, rotaryDim: 8, ropeTheta: 10000 });
  });

  it('names the key of every refusal', () => {
    expectConfigError(
      () => bamba({ mamba_d_head: 'auto', mamba_n_heads: 6 }),
      '"mamba_n_heads"',
      'divisor of mamba_expand·hidden_size = 128',
    );
    expectConfigError(() => bamba({ num_key_value_heads: 3 }), '"num_key_value_heads"', 'divisor of the 4 query heads, got 3');
    expectConfigError(() => bamba({ attn_layer_indices: [4] }), '"attn_layer_indices"', 'in [0, 4), got 4');
    expectConfigError(() => bamba({ attn_layer_indices: [1, 1] }), 'distinct layer indices');
    expectConfigError(
      () => bamba({ rope_parameters: { rope_type: 'yarn' } }),
      '"rope_parameters.rope_type"',
      'RoPE scaling is not supported',
    );
    expectConfigError(() => bamba({ partial_rotary_factor: 0.3125, rope_parameters: {} }), '"partial_rotary_factor"', 'even rotary width');
    expectConfigError(() => bamba({ hidden_act: 'gelu' }), '"hidden_act"');
  });

  it('keeps the Bamba checkpoint names (model.layers.i.mamba / self_attn / feed_forward)', () => {
    const c = bamba();
    expect(weightKeys(c)).toEqual({
      embedding: 'model.embed_tokens.weight',
      normF: 'model.final_layernorm.weight',
      lmHead: 'lm_head.weight',
    });
    expect(layerWeightKeys(c, 0)).toMatchObject({
      norm: 'model.layers.0.input_layernorm.weight',
      inProj: 'model.layers.0.mamba.in_proj.weight',
    });
    expect(() => layerWeightKeys(c, 1)).toThrow(/an attention layer/);
    const layer1 = expectedTensors(c)
      .filter((t) => t.layer === 1)
      .map((t) => `${t.key} ${t.shape.join('x')}`);
    expect(layer1).toEqual([
      'model.layers.1.input_layernorm.weight 64',
      'model.layers.1.self_attn.q_proj.weight 64x64',
      'model.layers.1.self_attn.k_proj.weight 32x64',
      'model.layers.1.self_attn.v_proj.weight 32x64',
      'model.layers.1.self_attn.o_proj.weight 64x64',
      'model.layers.1.pre_ff_layernorm.weight 64',
      'model.layers.1.feed_forward.gate_proj.weight 128x64',
      'model.layers.1.feed_forward.up_proj.weight 128x64',
      'model.layers.1.feed_forward.down_proj.weight 64x128',
    ]);
  });
});

describe('mamba_ssm hybrids (attn_layer_idx, attn_cfg, d_intermediate)', () => {
  it('leaves a pure Mamba-2 config exactly as it was (no hybrid key)', () => {
    const c = ssm({ attn_layer_idx: [], attn_cfg: {}, d_intermediate: 0 });
    expect('hybrid' in c).toBe(false);
    expect(layerKinds(c)).toEqual(['mamba2', 'mamba2', 'mamba2', 'mamba2']);
  });

  it("uses MHA's constructor defaults (biases on, head_dim = d_model / heads, no conv, no rotary)", () => {
    const a = hybridOf(ssm())!.attention!;
    expect(a).toEqual({
      nHeads: 8,
      nKvHeads: 8,
      headDim: 32,
      rotaryDim: 0,
      ropeTheta: 10000,
      convKernel: 0,
      qkvBias: true,
      outBias: true,
      softmaxScale: 1 / Math.sqrt(32),
      mlpDim: 0,
    });
    expect(hybridOf(ssm())!.mlp).toBeUndefined();
  });

  it('rounds GatedMLP hidden up to 128 and the MHA mlp_dim up to 256; an MLP-only model is a hybrid too', () => {
    const c = ssm({ d_intermediate: 300 }, { mlp_dim: 10, softmax_scale: 0.5 });
    expect(hybridOf(c)).toMatchObject({ mlp: { kind: 'gated', hidden: 384 }, attention: { mlpDim: 256, softmaxScale: 0.5 } });
    const mlpOnly = ssm({ attn_layer_idx: [], d_intermediate: 64 });
    expect(hybridOf(mlpOnly)).toEqual({
      family: 'mamba_ssm',
      layers: ['mamba2', 'mamba2', 'mamba2', 'mamba2'],
      mlp: { kind: 'gated', hidden: 128, bias: false },
    });
  });

  it('refuses what it cannot export, naming the attn_cfg key', () => {
    expectConfigError(() => ssm({}, { causal: undefined }), '"attn_cfg.causal"', 'expected true');
    expectConfigError(() => ssm({}, { rotary_emb_interleaved: true }), '"attn_cfg.rotary_emb_interleaved"');
    expectConfigError(() => ssm({}, { d_conv: 1 }), '"attn_cfg.d_conv"', 'expected 0 (no conv) or a width in [2, 64]');
    expectConfigError(() => ssm({}, { rotary_emb_dim: 5 }), '"attn_cfg.rotary_emb_dim"', 'even rotary width');
    expectConfigError(() => ssm({}, { num_heads_kv: 3 }), '"attn_cfg.num_heads_kv"');
    expectConfigError(() => ssm({}, { dropout: 0.1 }), '"attn_cfg.dropout"', 'unknown MHA argument');
    expectConfigError(() => ssm({}, { num_heads: undefined }), '"attn_cfg.num_heads"');
    expectConfigError(() => ssm({ d_intermediate: -1 }), '"d_intermediate"');
  });

  it('the mamba2attn-2.7b preset: Mamba-2 2.7b sizes, MHA at 6 layers, KV caches in the I/O', () => {
    const c = loadPreset('mamba2attn-2.7b').config;
    expect([c.dModel, c.nLayer, c.vocabSize, c.nHeads, c.dInProj, c.convDim, c.tieEmbeddings]).toEqual([
      2560,
      64,
      50288,
      80,
      10576,
      5376,
      true,
    ]);
    const h = hybridOf(c)!;
    expect(h.layers.flatMap((k, i) => (k === 'attention' ? [i] : []))).toEqual([9, 18, 27, 36, 45, 56]);
    expect(h.attention).toMatchObject({
      nHeads: 30,
      nKvHeads: 30,
      headDim: 128,
      rotaryDim: 64,
      convKernel: 4,
      qkvBias: false,
      outBias: false,
    });
    const io = ioTable(c);
    expect(io.inputs.find((e) => e.name === 'past_key.9')?.shape).toEqual(['batch', 30, 'past_sequence', 128]);
    expect(io.inputs.find((e) => e.name === 'past_conv.9')?.shape).toEqual(['batch', 11520, 3]);
    expect(io.inputs.some((e) => e.name === 'past_ssm.9')).toBe(false);
    expect(expectedTensors(c).find((t) => t.key === 'backbone.layers.9.mixer.in_proj.weight')?.shape).toEqual([11520, 2560]);
  });
});
