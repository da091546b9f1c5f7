/**
 * The generation loop, written once over Mamba2Model.forward (any backend):
 *
 *   prompt ids ──prefill (one call, or windows of prefillWindow continuing the state)──▶ state, last logits
 *        ┌──────────────────────────────────────────────────────────────────────────────┘
 *        ▼
 *   sample next id per row ─▶ stop id? stop string? max tokens? ─yes─▶ done
 *        │ no
 *        ▼
 *   forward([[id] per row], state)   (sequence = 1: the graph's single-step path) ─▶ state, logits ─▶ (loop)
 *
 * Rows of unequal length are prefilled one by one (the SSM has no padding mask, spec §6.17) and
 * their states stacked for batched decoding. A hybrid's KV caches of different lengths do not
 * stack: its rows are prefilled and decoded in groups of equal prompt length (one forward call
 * per group and step).
 */
import { describe } from './backend.js';
import { IncrementalDecoder, StopStringMatcher } from './detokenize.js';
import type { Mamba2Model } from './model.js';
import { checkIds, resolveOptions, type GenerateOptions, type ResolvedOptions } from './options.js';
import { mulberry32, randomSeed, sampleToken } from './sampling.js';
import { concatHostStates, sliceHostState, stateFromHost, type HostState, type Mamba2State } from './state.js';

export interface StreamChunk {
  tokenId: number;
  /** Text that became final with this token ('' while a character or a possible stop string is incomplete). */
  text: string;
  /** Position of the token among the new tokens (0-based). */
  index: number;
}

export interface RowChunk extends StreamChunk {
  row: number;
}

export type FinishReason = 'length' | 'stop_token' | 'stop_string';

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

interface Row {
  prompt: number[];
  history: number[];
  out: number[];
  text: string;
  decoder: IncrementalDecoder | undefined;
  stopper: StopStringMatcher;
  finish: FinishReason | undefined;
}

const now = (): number => performance.now();

function promptIds(model: Mamba2Model, p: unknown, o: ResolvedOptions, what: string): number[] {
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
async function prefill(model: Mamba2Model, rows: number[][], init: Mamba2State | undefined, window: number, signal: AbortSignal | undefined): Promise<{ state: Mamba2State; last: Float32Array[] }> {
  const L = rows[0]!.length;
  let state = init;
  let last: Float32Array[] = [];
  for (let a = 0; a < L; a += window) {
    signal?.throwIfAborted();
    const r = await model.forward(rows.map((row) => row.slice(a, Math.min(L, a + window))), state);
    if (state !== init) state?.dispose();
    state = r.state;
    if (a + window >= L) last = rows.map((_, b) => r.logits.at(b, -1).slice());
  }
  return { state: state!, last };
}

/** Generate for every prompt; yields each new token as it comes and returns one result per row. */
export async function* generateRows(
  model: Mamba2Model,
  prompts: readonly unknown[],
  opts: GenerateOptions,
  what: string,
): AsyncGenerator<RowChunk, GenerateResult[], undefined> {
  const c = model.config;
  const o = resolveOptions(opts, c.vocabSize);
  const tok = model.tokenizer;
  if (o.stopStrings.length > 0 && !tok) throw new RangeError('opts.stopStrings: this model has no tokenizer, so there is no text to match; use opts.stopTokenIds');
  const single = prompts.length === 1;
  const ids = prompts.map((p, b) => promptIds(model, p, o, single ? what : `${what}[${b}]`));
  const B = ids.length;
  if (o.state) model.checkState(o.state, B, 'opts.state');
  const stopIds = new Set<number>(o.stopTokenIds);
  if (c.eosTokenId !== undefined) stopIds.add(c.eosTokenId);
  if (tok?.eosTokenId !== undefined) stopIds.add(tok.eosTokenId);
  const seed = o.seed ?? randomSeed();
  const rng = mulberry32(seed);
  o.signal?.throwIfAborted();

  const rows: Row[] = ids.map((p) => ({
    prompt: p,
    history: p.slice(),
    out: [],
    text: '',
    decoder: tok ? new IncrementalDecoder(tok, p) : undefined,
    stopper: new StopStringMatcher(o.stopStrings),
    finish: undefined,
  }));

  /** Rows decoded together through one state (one group, unless a hybrid has prompts of unequal length). */
  /** `spare`: the group's previous state, whose buffers the next step's state is written into. */
  let groups: { rows: number[]; state: Mamba2State; spare?: Mamba2State }[] = [];
  const release = (s: Mamba2State | undefined): void => {
    if (s && s !== o.state) s.dispose();
  };
  try {
    // ── prefill ──
    const t0 = now();
    const last: Float32Array[] = [];
    const init = o.state && !ids.every((p) => p.length === ids[0]!.length) ? await o.state.toHost() : undefined;
    /** The caller's initial state for these rows (a fresh one when absent). */
    const initFor = (rs: number[]): Mamba2State | undefined =>
      init ? stateFromHost(model.backend, model.specs, concatHostStates(rs.map((b) => sliceHostState(init, b)))) : undefined;
    if (ids.every((p) => p.length === ids[0]!.length)) {
      const r = await prefill(model, ids, o.state, o.prefillWindow, o.signal);
      groups = [{ rows: ids.map((_, b) => b), state: r.state }];
      r.last.forEach((l, b) => (last[b] = l));
    } else if (!model.hasKvCache) {
      const hosts: HostState[] = [];
      for (let b = 0; b < B; b++) {
        const s0 = initFor([b]);
        try {
          const r = await prefill(model, [ids[b]!], s0, o.prefillWindow, o.signal);
          hosts.push(await r.state.toHost());
          r.state.dispose();
          last[b] = r.last[0]!;
        } finally {
          s0?.dispose();
        }
      }
      groups = [{ rows: ids.map((_, b) => b), state: stateFromHost(model.backend, model.specs, concatHostStates(hosts)) }];
    } else {
      for (const len of [...new Set(ids.map((p) => p.length))]) {
        const rs = ids.flatMap((p, b) => (p.length === len ? [b] : []));
        const s0 = initFor(rs);
        try {
          const r = await prefill(model, rs.map((b) => ids[b]!), s0, o.prefillWindow, o.signal);
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
    if (o.maxNewTokens === 0) for (const r of rows) r.finish = 'length';
    while (rows.some((r) => r.finish === undefined)) {
      const t1 = now();
      const chunks: RowChunk[] = [];
      rows.forEach((r, b) => {
        if (r.finish !== undefined) return;
        const suppress = r.out.length < o.minNewTokens ? stopIds : undefined;
        const id = sampleToken(last[b]!, r.history, { ...o.sampling, realVocabSize: c.realVocabSize, ...(suppress ? { suppress } : {}) }, rng);
        r.out.push(id);
        r.history.push(id);
        let piece = r.decoder ? r.decoder.push(id) : '';
        const s = r.stopper.push(piece);
        piece = s.text;
        if (s.stopped) r.finish = 'stop_string';
        else if (stopIds.has(id)) r.finish = 'stop_token';
        else if (r.out.length >= o.maxNewTokens) r.finish = 'length';
        if (r.finish !== undefined && r.finish !== 'stop_string') {
          const tail = r.stopper.push(r.decoder ? r.decoder.flush() : '');
          piece += tail.text + r.stopper.flush();
          if (tail.stopped) r.finish = 'stop_string';
        }
        r.text += piece;
        chunks.push({ row: b, tokenId: id, text: piece, index: r.out.length - 1 });
      });
      decodeMs += now() - t1;
      for (const ch of chunks) yield ch;
      if (rows.every((r) => r.finish !== undefined)) break;
      o.signal?.throwIfAborted();
      const t2 = now();
      for (const gr of groups) {
        if (gr.rows.every((b) => rows[b]!.finish !== undefined)) continue; // a finished group stops
        // Finished rows keep feeding their last token; their results are ignored.
        const spare = gr.spare;
        gr.spare = undefined;
        const f = await model.forward(gr.rows.map((b) => [rows[b]!.out[rows[b]!.out.length - 1]!]), gr.state, spare ? { into: spare } : {});
        // the caller's own state is never written into
        if (gr.state !== o.state && model.writesStateInPlace(gr.rows.length)) gr.spare = gr.state;
        else release(gr.state);
        gr.state = f.state;
        gr.rows.forEach((b, j) => (last[b] = f.logits.at(j, -1).slice()));
      }
      steps++;
      decodeMs += now() - t2;
    }
    return rows.map((r) => ({
      promptIds: r.prompt,
      outputIds: r.out,
      text: r.text,
      finishReason: r.finish!,
      prefillTokens: ids.reduce((a, p) => a + p.length, 0),
      decodeTokens: steps * B,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (ids.reduce((a, p) => a + p.length, 0) * 1000) / prefillMs : 0,
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
