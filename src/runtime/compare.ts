/**
 * How close an exported model (fp16, int8, int4…) stays to a reference export (usually its fp32
 * export) on the same prompts. For each prompt: one prefill, then `steps` greedy decode steps fed
 * with the **reference's** tokens (teacher forcing, so both models always see the same ids):
 *
 *  - max and mean |Δ logits| over every position (prefill rows and decode steps),
 *  - KL(reference ‖ model) of the next-token distributions (softmax over the real vocabulary), mean and max,
 *  - greedy agreement: steps whose argmax matches the reference's, and the first step that differs
 *    (up to there, free-running greedy decoding of both models is identical).
 *
 * The prompt's last position counts as greedy step 0; padded vocabulary rows (≥ realVocabSize) are ignored.
 * When either model returns only the last position's logits (`export --logits last`), prefill
 * compares that row alone.
 */
import { Mamba2Model } from './index.js';

export interface CompareOptions {
  /** Token id rows, or text (encoded with the reference model's tokenizer). Each runs alone (batch 1). */
  prompts: readonly (string | readonly number[])[];
  /** Greedy steps per prompt, the prompt's last position included (default 20). */
  steps?: number;
  /** EP(s) of the model under test (default 'cpu'), e.g. 'webgpu'. */
  ep?: string;
  /** EP(s) of the reference (default 'cpu'). */
  referenceEp?: string;
}

export interface PromptReport {
  promptLength: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  meanKL: number;
  maxKL: number;
  agree: number;
  steps: number;
  /** First greedy step whose argmax differs; null when all agree. */
  firstMismatch: number | null;
}

export interface CompareReport {
  /** The EP each session really ran on. */
  ep: string;
  referenceEp: string;
  /** Logit rows compared (all prompts). */
  positions: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  /** KL(reference ‖ model) in nats, averaged over positions. */
  meanKL: number;
  maxKL: number;
  /** Greedy steps that agree / steps, over all prompts. */
  agree: number;
  steps: number;
  agreement: number;
  prompts: PromptReport[];
}

/** Running statistics over rows of logits. */
export class LogitStats {
  rows = 0;
  maxAbsDiff = 0;
  private sumAbs = 0;
  private count = 0;
  private sumKL = 0;
  maxKL = 0;

  constructor(
    /** Row width (vocabSize) and the prefix that counts (realVocabSize). */
    readonly V: number,
    readonly real: number,
  ) {}

  /** Adds `n` rows [n,V] of reference and model logits. */
  add(ref: Float32Array, got: Float32Array, n: number): void {
    const { V, real } = this;
    if (ref.length < n * V || got.length < n * V)
      throw new RangeError(`LogitStats.add: expected ${n}·${V} logits, got ${ref.length} and ${got.length}`);
    for (let r = 0; r < n; r++) {
      const o = r * V;
      for (let i = 0; i < real; i++) {
        const d = Math.abs(ref[o + i]! - got[o + i]!);
        if (!(d <= this.maxAbsDiff)) this.maxAbsDiff = d; // NaN sticks
        this.sumAbs += d;
      }
      this.count += real;
      const kl = klDivergence(ref.subarray(o, o + real), got.subarray(o, o + real));
      this.sumKL += kl;
      if (!(kl <= this.maxKL)) this.maxKL = kl;
      this.rows++;
    }
  }

  get meanAbsDiff(): number {
    return this.count ? this.sumAbs / this.count : 0;
  }

  get meanKL(): number {
    return this.rows ? this.sumKL / this.rows : 0;
  }
}

/** KL(softmax(p) ‖ softmax(q)) in nats, in float64. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
  return Math.max(0, kl);
}

function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i]! - m);
  const lse = m + Math.log(s);
  return Float64Array.from({ length: x.length }, (_, i) => x[i]! - lse);
}

/** Index of the largest of the first `n` values. */
export function argmaxOf(x: ArrayLike<number>, n = x.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Compares the model in `modelDir` against the one in `referenceDir` (same config and vocabulary). */
export async function compareModels(modelDir: string, referenceDir: string, opts: CompareOptions): Promise<CompareReport> {
  const steps = opts.steps ?? 20;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new RangeError(`steps: expected a positive integer, got ${steps}`);
  if (!Array.isArray(opts.prompts) || opts.prompts.length === 0) throw new RangeError('prompts: expected at least one prompt');
  const ref = await Mamba2Model.load(referenceDir, { ep: opts.referenceEp ?? 'cpu' });
  try {
    const model = await Mamba2Model.load(modelDir, { ep: opts.ep ?? 'cpu' });
    try {
      const [a, b] = [ref.config, model.config];
      if (a.vocabSize !== b.vocabSize || a.dModel !== b.dModel || a.nLayer !== b.nLayer) {
        throw new Error(
          `compare: ${modelDir} (V ${b.vocabSize}, D ${b.dModel}, ${b.nLayer} layers) is not the same model as ${referenceDir} (V ${a.vocabSize}, D ${a.dModel}, ${a.nLayer} layers)`,
        );
      }
      const total = new LogitStats(a.vocabSize, a.realVocabSize);
      const reports: PromptReport[] = [];
      for (const [k, p] of opts.prompts.entries()) {
        const ids = typeof p === 'string' ? ref.encode(p) : [...p];
        if (ids.length === 0) throw new RangeError(`prompts[${k}]: expected at least one token`);
        reports.push(await comparePrompt(ref, model, ids, steps, total));
      }
      const agree = reports.reduce((s, r) => s + r.agree, 0);
      const n = reports.reduce((s, r) => s + r.steps, 0);
      return {
        ep: model.ep,
        referenceEp: ref.ep,
        positions: total.rows,
        maxAbsDiff: total.maxAbsDiff,
        meanAbsDiff: total.meanAbsDiff,
        meanKL: total.meanKL,
        maxKL: total.maxKL,
        agree,
        steps: n,
        agreement: agree / n,
        prompts: reports,
      };
    } finally {
      await model.release();
    }
  } finally {
    await ref.release();
  }
}

async function comparePrompt(ref: Mamba2Model, model: Mamba2Model, ids: number[], steps: number, total: LogitStats): Promise<PromptReport> {
  const { vocabSize: V, realVocabSize: real } = ref.config;
  const stats = new LogitStats(V, real);
  let [ra, rb] = [await ref.forward([ids]), await model.forward([ids])];
  let agree = 0;
  let firstMismatch: number | null = null;
  try {
    for (let s = 0; ; s++) {
      // a model exported with `logits: 'last'` returns one row per call: compare the rows both have
      const rows = Math.min(ra.logits.dims[1], rb.logits.dims[1]);
      const tail = (d: Float32Array) => d.subarray(d.length - rows * V);
      stats.add(tail(ra.logits.data), tail(rb.logits.data), rows);
      total.add(tail(ra.logits.data), tail(rb.logits.data), rows);
      const [ta, tb] = [argmaxOf(ra.logits.at(0, -1), real), argmaxOf(rb.logits.at(0, -1), real)];
      if (ta === tb) agree++;
      else firstMismatch ??= s;
      if (s + 1 >= steps) break;
      const [na, nb] = [await ref.forward([[ta]], ra.state), await model.forward([[ta]], rb.state)];
      ra.state.dispose();
      rb.state.dispose();
      [ra, rb] = [na, nb];
    }
  } finally {
    ra.state.dispose();
    rb.state.dispose();
  }
  return {
    promptLength: ids.length,
    maxAbsDiff: stats.maxAbsDiff,
    meanAbsDiff: stats.meanAbsDiff,
    meanKL: stats.meanKL,
    maxKL: stats.maxKL,
    agree,
    steps,
    firstMismatch,
  };
}
