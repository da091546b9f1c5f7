/**
 * The three checks of `verify`, against a reference fixture (reference.ts):
 *  1. cases: logits of each case from an empty state vs the reference, max |Δ|;
 *  2. split prefill: the first case with L ≥ 2 run as two calls (the second continuing the state of
 *     the first) must give the logits of one call;
 *  3. greedy: prefill the prompt, then decode one token per call through the state, each token the
 *     argmax of the last logits over the real vocabulary with EOS excluded; ids must be identical.
 */
import type { Reference, ReferenceCase, ReferenceGreedy } from './reference.js';
import type { Mamba2Model } from '../runtime/index.js';

export interface MaxDiff {
  /** max |Δ| (NaN when the model produced a NaN). */
  maxAbsDiff: number;
  /** Where it is: [batch, position, vocab]; null when nothing was compared. */
  at: [number, number, number] | null;
}

export interface CaseResult extends MaxDiff {
  index: number;
  batch: number;
  length: number;
  /** Logits compared per position (the reference's vocab; ≤ the model's padded vocab). */
  vocab: number;
  ok: boolean;
}

export interface SplitResult {
  caseIndex: number;
  lengths: [number, number];
  /** Two calls vs one call of the same model. */
  vsOneCall: MaxDiff;
  /** Two calls vs the reference logits. */
  vsReference: MaxDiff;
  ok: boolean;
}

export interface GreedyResult {
  row: number;
  promptLength: number;
  newTokens: number;
  /** New tokens identical to the reference before the first difference. */
  matched: number;
  expected: number[];
  got: number[];
  ok: boolean;
}

const within = (d: MaxDiff, tol: number): boolean => d.maxAbsDiff <= tol; // false for NaN

/** max |a − ref| over [B][L][refV], `a` being [B, L, V] row-major with V ≥ refV. */
export function maxAbsDiff(a: Float32Array, v: number, ref: readonly (readonly (readonly number[])[])[]): MaxDiff {
  let max = 0;
  let at: MaxDiff['at'] = null;
  const len = ref[0]?.length ?? 0;
  for (let b = 0; b < ref.length; b++) {
    for (let t = 0; t < len; t++) {
      const row = ref[b]![t]!;
      const base = (b * len + t) * v;
      for (let i = 0; i < row.length; i++) {
        const d = Math.abs(a[base + i]! - row[i]!);
        if (Number.isNaN(d)) return { maxAbsDiff: NaN, at: [b, t, i] };
        if (d > max || at === null) {
          max = Math.max(max, d);
          at = [b, t, i];
        }
      }
    }
  }
  return { maxAbsDiff: max, at };
}

/** [B, L, V] row-major → nested [B][L][V] arrays (for comparing two model outputs). */
function nest(a: Float32Array, b: number, l: number, v: number): number[][][] {
  return Array.from({ length: b }, (_x, i) =>
    Array.from({ length: l }, (_y, t) => Array.from(a.subarray((i * l + t) * v, (i * l + t + 1) * v))),
  );
}

/**
 * Every case's logits must be over the model's vocabulary: its padded size, or its real size (the
 * model's, or the one the reference declares in greedy.real_vocab_size) when the reference leaves
 * the padding columns out. Anything else is a reference of another model: a RangeError naming both
 * shapes, before anything is compared (comparing the common columns would report a large |Δ|).
 */
export function checkReferenceVocab(ref: Pick<Reference, 'cases' | 'greedy'>, model: { vocabSize: number; realVocabSize: number }): void {
  const reals = [model.realVocabSize, ...(ref.greedy?.realVocabSize !== undefined ? [ref.greedy.realVocabSize] : [])].filter(
    (r) => r < model.vocabSize,
  );
  const allowed = new Set([model.vocabSize, ...reals]);
  for (const [index, c] of ref.cases.entries()) {
    const batch = c.inputIds.length;
    const len = c.inputIds[0]!.length;
    const got = c.logits[0]![0]!.length;
    if (allowed.has(got)) continue;
    const without = [...new Set(reals)].map((r) => `, or ${r} without the vocabulary padding`).join('');
    throw new RangeError(
      `reference: cases[${index}].logits is [${batch}×${len}×${got}] but the model gives [${batch}×${len}×${model.vocabSize}]: ` +
        `the vocabulary sizes differ (expected ${model.vocabSize} logits per position${without}, got ${got})`,
    );
  }
}

function checkVocab(c: ReferenceCase, index: number, modelVocab: number): number {
  const refVocab = c.logits[0]![0]!.length;
  if (refVocab > modelVocab) {
    throw new RangeError(`reference: cases[${index}].logits has ${refVocab} logits per position, the model only ${modelVocab}`);
  }
  return refVocab;
}

export async function checkCases(model: Mamba2Model, cases: readonly ReferenceCase[], tol: number): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const [index, c] of cases.entries()) {
    const vocab = checkVocab(c, index, model.config.vocabSize);
    const state = model.zeroState(c.inputIds.length);
    const r = await model.forward(c.inputIds, state);
    const d = maxAbsDiff(r.logits.data, r.logits.dims[2], c.logits);
    r.state.dispose();
    state.dispose();
    out.push({ index, batch: c.inputIds.length, length: c.inputIds[0]!.length, vocab, ...d, ok: within(d, tol) });
  }
  return out;
}

/** Splits the first case with L ≥ 2 at ⌊L/2⌋; undefined when every case has L = 1. */
export async function checkSplit(model: Mamba2Model, cases: readonly ReferenceCase[], tol: number): Promise<SplitResult | undefined> {
  const caseIndex = cases.findIndex((c) => c.inputIds[0]!.length >= 2);
  if (caseIndex === -1) return undefined;
  const c = cases[caseIndex]!;
  checkVocab(c, caseIndex, model.config.vocabSize);
  const batch = c.inputIds.length;
  const len = c.inputIds[0]!.length;
  const cut = Math.floor(len / 2);
  const zero = model.zeroState(batch);
  const one = await model.forward(c.inputIds, zero);
  const first = await model.forward(
    c.inputIds.map((r) => r.slice(0, cut)),
    zero,
  );
  const second = await model.forward(
    c.inputIds.map((r) => r.slice(cut)),
    first.state,
  );
  const v = one.logits.dims[2];
  const joined = new Float32Array(batch * len * v);
  for (let b = 0; b < batch; b++) {
    joined.set(first.logits.data.subarray(b * cut * v, (b + 1) * cut * v), b * len * v);
    joined.set(second.logits.data.subarray(b * (len - cut) * v, (b + 1) * (len - cut) * v), (b * len + cut) * v);
  }
  for (const s of [zero, one.state, first.state, second.state]) s.dispose();
  const vsOneCall = maxAbsDiff(joined, v, nest(one.logits.data, batch, len, v));
  const vsReference = maxAbsDiff(joined, v, c.logits);
  return { caseIndex, lengths: [cut, len - cut], vsOneCall, vsReference, ok: within(vsOneCall, tol) && within(vsReference, tol) };
}

/** Argmax over logits[0, vocab) of one row, skipping `exclude`; the first index wins ties. */
export function argmax(logits: Float32Array, offset: number, vocab: number, exclude?: number): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < vocab; i++) {
    if (i === exclude) continue;
    const x = logits[offset + i]!;
    if (best === -1 || x > bestValue) {
      best = i;
      bestValue = x;
    }
  }
  return best;
}

export async function checkGreedy(model: Mamba2Model, g: ReferenceGreedy, realVocab: number): Promise<GreedyResult[]> {
  const vocab = Math.min(g.realVocabSize ?? realVocab, model.config.vocabSize);
  const out: GreedyResult[] = [];
  for (const [row, prompt] of g.inputIds.entries()) {
    const expected = g.outputIds[row]!.slice(prompt.length);
    const got: number[] = [];
    const zero = model.zeroState(1);
    let r = await model.forward([prompt], zero);
    zero.dispose();
    for (;;) {
      const [, len, v] = r.logits.dims;
      const next = argmax(r.logits.data, (len - 1) * v, vocab, g.eosTokenId);
      got.push(next);
      if (got.length === expected.length || next !== expected[got.length - 1]) break;
      const prev = r.state;
      r = await model.forward([[next]], prev);
      prev.dispose();
    }
    r.state.dispose();
    let matched = 0;
    while (matched < got.length && got[matched] === expected[matched]) matched++;
    out.push({ row, promptLength: prompt.length, newTokens: expected.length, matched, expected, got, ok: matched === expected.length });
  }
  return out;
}
