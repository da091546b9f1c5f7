/**
 * The generation loop of the library (Mamba2Model.generate/stream), written once over a
 * ForwardModel (any backend); each row's sampling, text and stopping is a RowDecoder (decoder.ts):
 *
 *   prompt ids ──prefill (one call, or windows of prefillWindow continuing the state)──▶ state, last logits
 *        ┌──────────────────────────────────────────────────────────────────────────────┘
 *        ▼
 *   sample next id per row ─▶ stop id? stop string? max tokens? ─yes─▶ done
 *        │ no
 *        ▼
 *   forward([[id] per row], state)   (sequence = 1: the graph's single-step path) ─▶ state, logits ─▶ (loop)
 *
 * Rows of unequal length are prefilled one by one (the SSM has no padding mask, docs/model.md §6.17) and
 * their states stacked for batched decoding. A hybrid's KV caches of different lengths do not
 * stack: its rows are prefilled and decoded in groups of equal prompt length (one forward call
 * per group and step).
 */
import { describe } from './backend.js';
import { RowDecoder, stopIdSet, type FinishReason, type StreamChunk } from './decoder.js';
import type { ForwardModel } from './forward-model.js';
import { checkIds, resolveOptions, type GenerateOptions, type ResolvedOptions } from './options.js';
import { mulberry32, randomSeed } from './sampling.js';
import type { Mamba2State } from './state.js';
import { downloadRows, stackRows, stateFromArrays, type StateRow } from './state-rows.js';

export interface RowChunk extends StreamChunk {
  row: number;
}

export interface GenerateResult {
  promptIds: number[];
  /** The new token ids (a final stop token included). */
  outputIds: number[];
  /** Text of the new tokens, cut before a stop string; '' for models without a tokenizer. */
  text: string;
  finishReason: FinishReason;
  /** Prompt tokens run through the prefill (all rows). */
  prefillTokens: number;
  /** Single-step forward calls × rows. */
  decodeTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** The sampler's seed (random when not given): pass it back to repeat the run. */
  seed: number;
}

const now = (): number => performance.now();

function promptIds(model: ForwardModel, p: unknown, o: ResolvedOptions, what: string): number[] {
  if (typeof p === 'string') {
    if (p === '') throw new RangeError(`${what}: expected a non-empty prompt, got ""`);
    const ids = model.encode(p, { addSpecialTokens: o.addSpecialTokens });
    if (ids.length === 0) throw new RangeError(`${what}: the prompt encodes to no tokens`);
    return ids;
  }
  if (!Array.isArray(p)) throw new TypeError(`${what}: expected a string or an array of token ids, got ${describe(p)}`);
  return checkIds(p, model.config.realVocabSize, what).slice();
}

/** Prefill equal-length rows, in windows; returns the last position's logits per row. */
async function prefill(
  model: ForwardModel,
  rows: number[][],
  init: Mamba2State | undefined,
  window: number,
  signal: AbortSignal | undefined,
): Promise<{ state: Mamba2State; last: Float32Array[] }> {
  const L = rows[0]!.length;
  let state = init;
  let last: Float32Array[] = [];
  for (let a = 0; a < L; a += window) {
    signal?.throwIfAborted();
    const r = await model.forward(
      rows.map((row) => row.slice(a, Math.min(L, a + window))),
      state,
    );
    if (state !== init) state?.dispose();
    state = r.state;
    if (a + window >= L) last = rows.map((_, b) => r.logits.at(b, -1).slice());
  }
  return { state: state!, last };
}

/** Generate for every prompt; yields each new token as it comes and returns one result per row. */
export async function* generateRows(
  model: ForwardModel,
  prompts: readonly unknown[],
  opts: GenerateOptions,
  what: string,
): AsyncGenerator<RowChunk, GenerateResult[], undefined> {
  const c = model.config;
  const o = resolveOptions(opts, c.vocabSize);
  const tok = model.tokenizer;
  if (o.stopStrings.length > 0 && !tok)
    throw new RangeError('opts.stopStrings: this model has no tokenizer, so there is no text to match; use opts.stopTokenIds');
  const single = prompts.length === 1;
  const ids = prompts.map((p, b) => promptIds(model, p, o, single ? what : `${what}[${b}]`));
  const B = ids.length;
  if (o.state) model.checkState(o.state, B, 'opts.state');
  const stopIds = stopIdSet(c, tok, o.stopTokenIds);
  const seed = o.seed ?? randomSeed();
  const rng = mulberry32(seed); // one stream for all rows, drawn in row order
  o.signal?.throwIfAborted();

  const rows = ids.map(
    (p) =>
      new RowDecoder({
        promptIds: p,
        sampling: { ...o.sampling, realVocabSize: c.realVocabSize },
        rng,
        stopIds,
        stopStrings: o.stopStrings,
        maxNewTokens: o.maxNewTokens,
        minNewTokens: o.minNewTokens,
        tokenizer: tok,
      }),
  );

  /** Rows decoded together through one state (one group, unless a hybrid has prompts of unequal length). */
  /** `spare`: the group's previous state, whose buffers the next step's state is written into. */
  let groups: { rows: number[]; state: Mamba2State; spare?: Mamba2State }[] = [];
  const release = (s: Mamba2State | undefined): void => {
    if (s && s !== o.state) s.dispose();
  };
  /** A state made of these row sets, stacked. */
  const stacked = (sets: readonly (readonly StateRow[])[]): Mamba2State =>
    stateFromArrays(model.backend, model.specs, sets.length, stackRows(model.specs, sets));
  try {
    // ── prefill ──
    const t0 = now();
    const last: Float32Array[] = [];
    const equal = ids.every((p) => p.length === ids[0]!.length);
    const init = o.state && !equal ? await downloadRows(model.backend, o.state) : undefined;
    /** The caller's initial state for these rows (a fresh one when absent). */
    const initFor = (rs: number[]): Mamba2State | undefined => (init ? stacked(rs.map((b) => init[b]!)) : undefined);
    if (equal) {
      const r = await prefill(model, ids, o.state, o.prefillWindow, o.signal);
      groups = [{ rows: ids.map((_, b) => b), state: r.state }];
      r.last.forEach((l, b) => (last[b] = l));
    } else if (!model.hasKvCache) {
      const sets: StateRow[][] = [];
      for (let b = 0; b < B; b++) {
        const s0 = initFor([b]);
        try {
          const r = await prefill(model, [ids[b]!], s0, o.prefillWindow, o.signal);
          sets.push((await downloadRows(model.backend, r.state))[0]!);
          r.state.dispose();
          last[b] = r.last[0]!;
        } finally {
          s0?.dispose();
        }
      }
      groups = [{ rows: ids.map((_, b) => b), state: stacked(sets) }];
    } else {
      for (const len of [...new Set(ids.map((p) => p.length))]) {
        const rs = ids.flatMap((p, b) => (p.length === len ? [b] : []));
        const s0 = initFor(rs);
        try {
          const r = await prefill(
            model,
            rs.map((b) => ids[b]!),
            s0,
            o.prefillWindow,
            o.signal,
          );
          groups.push({ rows: rs, state: r.state });
          rs.forEach((b, j) => (last[b] = r.last[j]!));
        } finally {
          s0?.dispose();
        }
      }
    }
    const prefillMs = now() - t0;

    // ── decode ──
    let decodeMs = 0;
    let steps = 0;
    while (rows.some((r) => !r.finished)) {
      const t1 = now();
      const chunks: RowChunk[] = [];
      rows.forEach((r, b) => {
        if (!r.finished) chunks.push({ row: b, ...r.push(last[b]!) });
      });
      decodeMs += now() - t1;
      for (const ch of chunks) yield ch;
      if (rows.every((r) => r.finished)) break;
      o.signal?.throwIfAborted();
      const t2 = now();
      for (const gr of groups) {
        if (gr.rows.every((b) => rows[b]!.finished)) continue; // a finished group stops
        // Finished rows keep feeding their last token; their results are ignored.
        const spare = gr.spare;
        gr.spare = undefined;
        const f = await model.forward(
          gr.rows.map((b) => [rows[b]!.lastToken]),
          gr.state,
          spare ? { into: spare } : {},
        );
        // the caller's own state is never written into
        if (gr.state !== o.state && model.writesStateInPlace(gr.rows.length)) gr.spare = gr.state;
        else release(gr.state);
        gr.state = f.state;
        gr.rows.forEach((b, j) => (last[b] = f.logits.at(j, -1).slice()));
      }
      steps++;
      decodeMs += now() - t2;
    }
    const prefillTokens = ids.reduce((a, p) => a + p.length, 0);
    return rows.map((r, b) => ({
      promptIds: ids[b]!,
      outputIds: r.out,
      text: r.text,
      finishReason: r.finishReason!,
      prefillTokens,
      decodeTokens: steps * B,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (prefillTokens * 1000) / prefillMs : 0,
      decodeTokensPerSecond: decodeMs > 0 ? (steps * B * 1000) / decodeMs : 0,
      seed,
    }));
  } finally {
    for (const gr of groups) {
      release(gr.state);
      gr.spare?.dispose();
    }
  }
}
