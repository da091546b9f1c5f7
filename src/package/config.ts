/**
 * The frozen, validated Mamba-2 configuration every part of the exporter reads.
 * Sizes follow docs/model.md §0 (glossary letters in comments).
 */
export type CheckpointFormat = 'hf' | 'mamba_ssm';

export interface Mamba2Config {
  readonly format: CheckpointFormat;
  readonly dModel: number; // D
  readonly nLayer: number; // NL
  /** Rows of the embedding / lm_head (already padded to pad_vocab_size_multiple). */
  readonly vocabSize: number; // V
  /** Tokens the tokenizer really has (mamba_ssm: the unpadded vocab_size; HF: = vocabSize). */
  readonly realVocabSize: number;
  readonly dState: number; // N
  readonly dConv: number; // K
  readonly expand: number; // E
  readonly headDim: number; // P
  readonly nHeads: number; // H = dSsm / P
  readonly nGroups: number; // G
  readonly chunkSize: number; // Q
  readonly dInner: number; // DI = E·D
  readonly dSsm: number; // channels through the SSM (= DI unless d_ssm given)
  readonly dMlp: number; // DI − dSsm (0 in published models)
  readonly convDim: number; // dSsm + 2·G·N
  readonly dInProj: number; // F = 2·DI + 2·G·N + H
  /** dt clamp [lo, hi]; hi may be Infinity. */
  readonly dtLimit: readonly [number, number];
  readonly dHasHdim: boolean;
  readonly rmsNorm: boolean; // gated RMSNorm in the mixer (true in all published models)
  readonly normBeforeGate: boolean; // always false in practice (docs/model.md §6.3)
  readonly bias: boolean; // in_proj / out_proj bias
  readonly convBias: boolean;
  readonly tieEmbeddings: boolean;
  readonly normEps: number;
  readonly residualInFp32: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
}
