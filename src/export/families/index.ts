/**
 * The model families the exporter reads, keyed by name (`hybrid.family`, or the checkpoint format
 * for pure Mamba-2 models) and by HF `model_type`. A new family is one module here plus one entry.
 *
 *   mamba2            HF Mamba2ForCausalLM                 mamba2.ts
 *   mamba_ssm         state-spaces/mamba MambaLMHeadModel  mamba_ssm.ts  (pure, and mamba2attn hybrids)
 *   bamba             HF BambaForCausalLM                  bamba.ts
 *   granitemoehybrid  IBM Granite-4.0-H                    granitemoehybrid.ts
 *   nemotron_h        NVIDIA Nemotron-H                    nemotron_h.ts
 */
import type { Mamba2Config } from '../../package/config.js';
import { hybridOf } from '../../package/layers.js';
import { bamba } from './bamba.js';
import { granite } from './granitemoehybrid.js';
import { mamba2 } from './mamba2.js';
import { mambaSsm } from './mamba_ssm.js';
import { nemotronH } from './nemotron_h.js';
import type { Family } from './types.js';

const FAMILIES: Readonly<Record<Family['name'], Family>> = {
  mamba2,
  mamba_ssm: mambaSsm,
  bamba,
  granitemoehybrid: granite,
  nemotron_h: nemotronH,
};

/** HF model types the exporter reads, in the order error messages list them. */
export const HF_FAMILIES: readonly Family[] = Object.values(FAMILIES).filter((f) => f.modelType !== undefined);

/** The family an HF config's `model_type` names, or undefined. */
export const familyByModelType = (type: unknown): Family | undefined => HF_FAMILIES.find((f) => f.modelType === type);

/** The family of a config: its hybrid family, or the pure model's checkpoint format. */
export function familyOf(c: Mamba2Config): Family {
  return FAMILIES[hybridOf(c)?.family ?? (c.format === 'hf' ? 'mamba2' : 'mamba_ssm')];
}

/** The family of the mamba_ssm checkpoint format (config.json without model_type). */
export const mambaSsmFamily: Family = mambaSsm;
