/**
 * `mamba2-onnx verify <model-dir> --reference <reference.json> [--tolerance 1e-4] [--ep cpu] [--json]`
 *
 * Exit code 0 only when every case's max |Δ logits| ≤ tolerance, the split prefill matches and the
 * greedy ids are identical; 1 otherwise (and for errors).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { EP_NAMES, Mamba2Model, type EpName } from '../runtime/index.js';
import { compareModels, type CompareReport } from '../runtime/compare.js';
import { EXIT_FAILURE, type CliIO, UsageError } from './errors.js';
import { floatFlag, intFlag, listFlag } from './flags.js';
import { formatDelta, table } from './format.js';
import { locateModel, readModelMeta } from './model-dir.js';
import { readReference } from './reference.js';
import {
  checkCases,
  checkGreedy,
  checkReferenceVocab,
  checkSplit,
  type CaseResult,
  type GreedyResult,
  type MaxDiff,
  type SplitResult,
} from './verify-checks.js';

export interface VerifyReport {
  ok: boolean;
  model: string;
  reference: string;
  ep: EpName;
  /** EPs asked for before `ep` that could not be used, and why. */
  fallbacks: { ep: EpName; reason: string }[];
  tolerance: number;
  cases: CaseResult[];
  split?: SplitResult;
  greedy: GreedyResult[];
  /** One line per failed check. */
  failures: string[];
}

export interface VerifyOptions {
  reference: string;
  tolerance: number;
  eps: readonly EpName[];
}

export async function verifyModel(modelArg: string, opts: VerifyOptions): Promise<VerifyReport> {
  const loc = await locateModel(modelArg, 'model-dir');
  if (loc.metaPath === undefined)
    throw new Error(`model-dir: expected mamba2-onnx.json beside '${loc.modelPath}' (verify needs the model's io table)`);
  const meta = await readModelMeta(loc.metaPath);
  const ref = await readReference(resolve(opts.reference));
  checkReferenceVocab(ref, meta.config); // before loading the model: a reference of another vocabulary is an error, not a large |Δ|
  const model = await Mamba2Model.load(loc.dir, { ep: opts.eps });
  try {
    const cases = await checkCases(model, ref.cases, opts.tolerance);
    const split = await checkSplit(model, ref.cases, opts.tolerance);
    const greedy = ref.greedy ? await checkGreedy(model, ref.greedy, meta.config.realVocabSize) : [];
    const failures: string[] = [];
    const tol = formatDelta(opts.tolerance);
    for (const c of cases) if (!c.ok) failures.push(`case ${c.index + 1}: max |Δ logits| ${formatDelta(c.maxAbsDiff)} > ${tol}`);
    if (split && !split.ok) {
      failures.push(
        `split prefill: max |Δ| ${formatDelta(split.vsOneCall.maxAbsDiff)} vs one call, ${formatDelta(split.vsReference.maxAbsDiff)} vs reference (tolerance ${tol})`,
      );
    }
    for (const g of greedy) {
      if (!g.ok)
        failures.push(`greedy row ${g.row}: new token ${g.matched + 1} expected ${g.expected[g.matched]}, got ${g.got[g.matched]}`);
    }
    return {
      ok: failures.length === 0,
      model: loc.dir,
      reference: ref.path,
      ep: model.ep,
      fallbacks: [...model.fallbacks],
      tolerance: opts.tolerance,
      cases,
      split,
      greedy,
      failures,
    };
  } finally {
    await model.release();
  }
}

const where = (d: MaxDiff): string => (d.at === null ? '' : `at [${d.at.join(', ')}]`);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'FAIL');

export function renderVerify(r: VerifyReport): string {
  const lines = [`verify ${r.model} against ${r.reference} (ep ${r.ep}, tolerance ${formatDelta(r.tolerance)})`];
  for (const f of r.fallbacks) lines.push(`  note: ep ${f.ep} not used: ${f.reason}`);
  const rows = r.cases.map((c) => [
    `case ${c.index + 1}`,
    `[${c.batch}×${c.length}]`,
    `max |Δ logits| ${formatDelta(c.maxAbsDiff)}`,
    where(c),
    verdict(c.ok),
  ]);
  if (r.split) {
    const s = r.split;
    rows.push([
      `split prefill`,
      `case ${s.caseIndex + 1}: ${s.lengths[0]} + ${s.lengths[1]}`,
      `max |Δ| ${formatDelta(s.vsOneCall.maxAbsDiff)} vs one call, ${formatDelta(s.vsReference.maxAbsDiff)} vs ref`,
      '',
      verdict(s.ok),
    ]);
  }
  for (const g of r.greedy) {
    rows.push([
      `greedy row ${g.row}`,
      `${g.promptLength} + ${g.newTokens} tokens`,
      `${g.matched}/${g.newTokens} identical`,
      '',
      verdict(g.ok),
    ]);
  }
  lines.push(table(rows, { indent: '  ' }));
  for (const g of r.greedy) {
    if (!g.ok)
      lines.push(
        `  greedy row ${g.row}: expected ${g.expected.join(' ')}`,
        `  ${' '.repeat(`greedy row ${g.row}: `.length - 2)}got      ${g.got.join(' ')}`,
      );
  }
  lines.push(r.ok ? 'PASS' : `FAIL: ${r.failures.join('; ')}`);
  return `${lines.join('\n')}\n`;
}

/** Deterministic prompts of token ids below `vocab`: `count` rows of `length` ids. */
export function comparePrompts(vocab: number, count = 3, length = 12): number[][] {
  return Array.from({ length: count }, (_, r) => Array.from({ length }, (_, i) => (r * 7919 + i * 104729 + 17) % vocab));
}

export function renderCompare(model: string, against: string, r: CompareReport): string {
  const e = (x: number) => x.toExponential(2);
  const rows = r.prompts.map((p, i) => [
    `prompt ${i + 1}`,
    `${p.promptLength} tok`,
    `max |Δ| ${e(p.maxAbsDiff)}`,
    `mean |Δ| ${e(p.meanAbsDiff)}`,
    `KL ${e(p.meanKL)}`,
    `greedy ${p.agree}/${p.steps}`,
  ]);
  rows.push([
    'all',
    `${r.positions} pos`,
    `max |Δ| ${e(r.maxAbsDiff)}`,
    `mean |Δ| ${e(r.meanAbsDiff)}`,
    `KL ${e(r.meanKL)} (max ${e(r.maxKL)})`,
    `greedy ${r.agree}/${r.steps} (${(100 * r.agreement).toFixed(1)} %)`,
  ]);
  return `compare ${model} (ep ${r.ep}) against ${against} (ep ${r.referenceEp})\n${table(rows, { indent: '  ' })}\n`;
}

interface VerifyFlags {
  reference?: string;
  against?: string;
  steps: number;
  minAgreement?: number;
  tolerance: number;
  ep: EpName[];
  json?: boolean;
}

export function registerVerify(program: Command, io: CliIO): void {
  program
    .command('verify')
    .description(
      'check an exported model against reference logits (--reference: per case max |Δ|, a split prefill, greedy ids) or against another export (--against: |Δ logits|, KL, greedy agreement)',
    )
    .argument('<model-dir>', 'exported model directory (model.onnx + mamba2-onnx.json)')
    .option('-r, --reference <file>', 'reference.json: { cases: [{ input_ids, logits }], greedy: { input_ids, output_ids, eos_token_id } }')
    .option('--against <model-dir>', 'a reference export of the same model (e.g. the fp32 export of a quantized one)')
    .option('--steps <N>', 'with --against: greedy steps per prompt', intFlag(1, 10_000), 20)
    .option('--min-agreement <x>', 'with --against: fail below this greedy agreement (0..1)', floatFlag(0, 1))
    .option('-t, --tolerance <x>', 'max |Δ logits| allowed', floatFlag(0), 1e-4)
    .option('--ep <list>', `execution providers to try in order (${EP_NAMES.join(', ')})`, listFlag(EP_NAMES), ['cpu'] as EpName[])
    .option('--json', 'print the report as JSON')
    .action(async (modelDir: string, flags: VerifyFlags) => {
      if ((flags.reference === undefined) === (flags.against === undefined))
        throw new UsageError('give exactly one of --reference or --against', 'verify');
      const json = (v: unknown) =>
        `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2)}\n`;
      if (flags.against !== undefined) {
        const meta = await readModelMeta((await locateModel(flags.against, '--against')).metaPath ?? '');
        const r = await compareModels(modelDir, flags.against, {
          prompts: comparePrompts(meta.config.realVocabSize),
          steps: flags.steps,
          ep: flags.ep.join(','),
        });
        io.out(flags.json ? json(r) : renderCompare(modelDir, flags.against, r));
        if (flags.minAgreement !== undefined && r.agreement < flags.minAgreement) {
          io.out(`FAIL: greedy agreement ${(100 * r.agreement).toFixed(1)} % < ${(100 * flags.minAgreement).toFixed(1)} %\n`);
          io.setExitCode(EXIT_FAILURE);
        }
        return;
      }
      const report = await verifyModel(modelDir, { reference: flags.reference!, tolerance: flags.tolerance, eps: flags.ep });
      io.out(flags.json ? json(report) : renderVerify(report));
      if (!report.ok) io.setExitCode(EXIT_FAILURE);
    });
}
