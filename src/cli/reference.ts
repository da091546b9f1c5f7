/**
 * The reference fixture format of ../shared/fixtures/README.md, read and checked before any model
 * runs (a reference file is input like any other: a wrong shape must be a clear error, not NaNs).
 *
 *   { cases: [{ input_ids: int[B][L], logits: float[B][L][V] }, …],
 *     greedy?: { input_ids: int[R][P], output_ids: int[R][P + n], eos_token_id?: int, real_vocab_size?: int } }
 */
import { readFile, stat } from 'node:fs/promises';

export interface ReferenceCase {
  inputIds: number[][];
  /** [B][L][V] */
  logits: number[][][];
}

export interface ReferenceGreedy {
  inputIds: number[][];
  outputIds: number[][];
  eosTokenId?: number;
  /** Tokens the argmax may pick from (ids ≥ this are vocab padding); the model's when absent. */
  realVocabSize?: number;
}

export interface Reference {
  path: string;
  cases: ReferenceCase[];
  greedy?: ReferenceGreedy;
}

const LIMIT = 2 ** 30;

export class ReferenceFormatError extends Error {
  override readonly name = 'ReferenceFormatError';
  constructor(path: string, field: string, expected: string, got: unknown) {
    super(`${path}: ${field}: expected ${expected}, got ${describe(got)}`);
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? String(v);
  return 'an object';
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** int[R][L] with R ≥ 1, L ≥ 1 and equal row lengths. */
function idMatrix(path: string, field: string, v: unknown): number[][] {
  if (!Array.isArray(v) || v.length === 0) throw new ReferenceFormatError(path, field, 'a non-empty list of token-id rows', v);
  let len = -1;
  v.forEach((row: unknown, r) => {
    if (!Array.isArray(row) || row.length === 0)
      throw new ReferenceFormatError(path, `${field}[${r}]`, 'a non-empty list of token ids', row);
    if (len !== -1 && row.length !== len) throw new ReferenceFormatError(path, `${field}[${r}]`, `a row of length ${len} like row 0`, row);
    len = row.length;
    row.forEach((id: unknown, t) => {
      if (!isId(id)) throw new ReferenceFormatError(path, `${field}[${r}][${t}]`, 'a non-negative integer token id', id);
    });
  });
  return v as number[][];
}

function logitsTensor(path: string, field: string, v: unknown, batch: number, len: number): number[][][] {
  if (!Array.isArray(v) || v.length !== batch) throw new ReferenceFormatError(path, field, `${batch} rows (the batch of input_ids)`, v);
  let vocab = -1;
  v.forEach((row: unknown, b) => {
    if (!Array.isArray(row) || row.length !== len)
      throw new ReferenceFormatError(path, `${field}[${b}]`, `${len} positions (the length of input_ids)`, row);
    row.forEach((pos: unknown, t) => {
      const f = `${field}[${b}][${t}]`;
      if (!Array.isArray(pos) || pos.length === 0) throw new ReferenceFormatError(path, f, 'a non-empty list of logits', pos);
      if (vocab !== -1 && pos.length !== vocab) throw new ReferenceFormatError(path, f, `${vocab} logits like ${field}[0][0]`, pos);
      vocab = pos.length;
      for (let i = 0; i < pos.length; i++) {
        if (typeof pos[i] !== 'number' || !Number.isFinite(pos[i]))
          throw new ReferenceFormatError(path, `${f}[${i}]`, 'a finite number', pos[i]);
      }
    });
  });
  return v as number[][][];
}

/** Checks a parsed reference JSON value. */
export function parseReference(raw: unknown, path: string): Reference {
  if (!isObj(raw)) throw new ReferenceFormatError(path, '(top level)', 'an object { cases, greedy }', raw);
  const cases: ReferenceCase[] = [];
  if (raw.cases !== undefined) {
    if (!Array.isArray(raw.cases)) throw new ReferenceFormatError(path, 'cases', 'a list of { input_ids, logits }', raw.cases);
    raw.cases.forEach((c: unknown, i) => {
      if (!isObj(c)) throw new ReferenceFormatError(path, `cases[${i}]`, 'an object { input_ids, logits }', c);
      const inputIds = idMatrix(path, `cases[${i}].input_ids`, c.input_ids);
      const logits = logitsTensor(path, `cases[${i}].logits`, c.logits, inputIds.length, inputIds[0]!.length);
      cases.push({ inputIds, logits });
    });
  }
  let greedy: ReferenceGreedy | undefined;
  if (raw.greedy !== undefined && raw.greedy !== null) {
    const g = raw.greedy;
    if (!isObj(g)) throw new ReferenceFormatError(path, 'greedy', 'an object { input_ids, output_ids, eos_token_id }', g);
    const inputIds = idMatrix(path, 'greedy.input_ids', g.input_ids);
    const outputIds = idMatrix(path, 'greedy.output_ids', g.output_ids);
    if (outputIds.length !== inputIds.length)
      throw new ReferenceFormatError(path, 'greedy.output_ids', `${inputIds.length} rows like input_ids`, outputIds);
    inputIds.forEach((prompt, r) => {
      const out = outputIds[r]!;
      if (out.length <= prompt.length || prompt.some((id, t) => out[t] !== id)) {
        throw new ReferenceFormatError(
          path,
          `greedy.output_ids[${r}]`,
          `the prompt input_ids[${r}] followed by at least one new token`,
          out,
        );
      }
    });
    const eos = g.eos_token_id;
    if (eos !== undefined && eos !== null && !isId(eos))
      throw new ReferenceFormatError(path, 'greedy.eos_token_id', 'a token id or null', eos);
    const real = g.real_vocab_size;
    if (real !== undefined && real !== null && !(isId(real) && real > 0))
      throw new ReferenceFormatError(path, 'greedy.real_vocab_size', 'a positive integer or absent', real);
    greedy = { inputIds, outputIds, ...(isId(eos) ? { eosTokenId: eos } : {}), ...(isId(real) ? { realVocabSize: real } : {}) };
  }
  if (cases.length === 0 && greedy === undefined)
    throw new ReferenceFormatError(path, 'cases', 'at least one case or a greedy entry', raw.cases);
  return { path, cases, greedy };
}

export async function readReference(path: string): Promise<Reference> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`--reference: file '${path}' not found`);
    throw e;
  }
  if (size > LIMIT) throw new RangeError(`--reference: '${path}' is ${size} bytes, expected at most 1 GiB`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`--reference: '${path}' is not valid JSON (${(e as Error).message})`);
  }
  return parseReference(raw, path);
}
