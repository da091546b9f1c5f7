/**
 * Request fuzzer for `mamba2-onnx serve` on loopback. POST /v1/completions gets bodies made of random
 * JSON, fields of random types and values (huge numbers, NaN-ish strings, nested junk, unicode,
 * long strings), mutated JSON text, raw bytes and odd content types; some clients hang up at random
 * moments (in the headers, mid-body, right after sending, mid-stream). Pass: every answer is a 200
 * (a complete JSON body or an SSE stream ending in [DONE]) or a 4xx JSON error in OpenAI's shape;
 * no 5xx, nothing hangs, the server never crashes; afterwards no slot is held, /health answers and
 * SIGTERM exits 0.
 *
 *   npx tsx test/fuzz/serve.ts [model-dir] [--requests 5000] [--concurrency 8] [--seed 1] [--vocab N] [--json]
 *
 * Without a model dir it exports a tiny random-weight model with a byte-level BPE tokenizer into a
 * temp dir. test/server-robustness.test.ts runs the same cases through fast-check (with shrinking).
 */
import { connect } from 'node:net';
import { resolve } from 'node:path';
import fc from 'fast-check';

/** What the cases are built against: the served model and the server's limits. */
export interface FuzzContext {
  modelName: string;
  /** Real vocabulary size (token ids below it are valid). */
  vocab: number;
  maxTokens: number;
  maxPromptTokens: number;
}

export interface FuzzCase {
  /** JSON text (sent as UTF-8), or raw bytes (sent as they are). */
  body: string | Uint8Array;
  /** undefined: no content-type header. */
  contentType: string | undefined;
  /** An extra header (content-encoding etc.) or none. */
  header?: [string, string];
}

export type DisconnectPhase = 'headers' | 'body' | 'sent' | 'stream';
export interface DisconnectCase {
  phase: DisconnectPhase;
  /** Where to cut the headers or body (fraction), or ms to wait after sending. */
  at: number;
  /** SSE events to read before hanging up (phase 'stream'). */
  events: number;
  promptIds: number[];
}

export type FuzzAction = { kind: 'request'; c: FuzzCase } | { kind: 'disconnect'; d: DisconnectCase };
export type Verdict = { ok: true; status: number; stream: boolean } | { ok: false; status: number; problem: string };

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  2,
  7,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  1e21,
];
const NAN_ISH = [
  'NaN',
  'nan',
  'Infinity',
  '-Infinity',
  '1e999',
  '-0',
  '0x10',
  ' 5 ',
  '5',
  '',
  'null',
  'true',
  'undefined',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '../../etc/passwd',
  '/etc/passwd',
  'file:///etc/passwd',
  '\u0000',
  '%00',
  '\ud800',
  '\udfff\ud800',
  '\u202e',
  '😀',
  'e\u0301',
  '\ufeff',
  '<|endoftext|>',
  '\r\n\r\n',
  'data: [DONE]\n\n',
];
const LITERALS = [
  '1e999',
  '-1e999',
  '1e-999',
  '-0',
  '00',
  '1.',
  '.5',
  '+1',
  '0x1F',
  'NaN',
  'Infinity',
  'undefined',
  '9'.repeat(400),
  '1e308',
  '4294967297',
];
const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=latin1',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  'application/json;;',
  '*/*',
  '',
];

const longString = (): fc.Arbitrary<string> =>
  fc
    .tuple(fc.integer({ min: 1_000, max: 70_000 }), fc.constantFrom('a', 'é', '😀', ' ', '\\', '"', 'ab ', '\u0000'))
    .map(([n, s]) => s.repeat(Math.ceil(n / s.length)));

/** Any odd JSON value. */
export function weirdValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    { arbitrary: fc.constantFrom(...NUMBERS), weight: 2 },
    { arbitrary: fc.constantFrom(...NAN_ISH), weight: 3 },
    fc.double(), // NaN and ±Infinity become null in JSON
    fc.integer({ min: -10, max: 400 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    longString(),
    fc.array(fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 })), { maxLength: 6 }),
  );
}

function promptArb(c: FuzzContext): fc.Arbitrary<unknown> {
  const id = fc.integer({ min: 0, max: c.vocab - 1 });
  return fc.oneof(
    { arbitrary: fc.array(id, { minLength: 1, maxLength: 40 }), weight: 4 },
    { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }), weight: 3 },
    { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }), weight: 2 },
    { arbitrary: fc.array(fc.integer({ min: -3, max: c.vocab + 3 }), { maxLength: c.maxPromptTokens + 4 }), weight: 1 },
    { arbitrary: fc.array(fc.oneof(fc.array(id, { maxLength: 3 }), fc.string({ maxLength: 4 })), { maxLength: 3 }), weight: 1 },
    { arbitrary: weirdValue(), weight: 2 },
  );
}

/** A field: mostly a valid value, sometimes (weight `junk` in 4) anything. */
const field = (good: fc.Arbitrary<unknown>, junk: number): fc.Arbitrary<unknown> =>
  junk === 0 ? good : fc.oneof({ arbitrary: good, weight: 4 - junk }, { arbitrary: weirdValue(), weight: junk });

/** A /v1/completions body object; `junk` (0–3) is how often a field gets a random value. */
export function completionBody(c: FuzzContext, junk: number): fc.Arbitrary<Record<string, unknown>> {
  const num = (min: number, max: number): fc.Arbitrary<number> => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
  const stop = fc.oneof(
    fc.string({ minLength: 1, maxLength: 5 }),
    fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 5 }), { maxLength: 4 }),
  );
  const body = fc.record(
    {
      model: field(fc.constant(c.modelName), junk),
      prompt:
        junk === 0
          ? fc.oneof(
              fc.array(fc.integer({ min: 0, max: c.vocab - 1 }), { minLength: 1, maxLength: 40 }),
              fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }),
            )
          : promptArb(c),
      max_tokens: field(fc.integer({ min: 1, max: c.maxTokens }), junk),
      temperature: field(num(0, 2), junk),
      top_p: field(num(0.01, 1), junk),
      top_k: field(fc.integer({ min: 0, max: 50 }), junk),
      seed: field(fc.integer(), junk),
      stop: field(stop, junk),
      stream: field(fc.boolean(), junk),
      repetition_penalty: field(num(0.5, 2), junk),
      n: field(fc.constant(1), junk),
      echo: field(fc.constant(false), junk),
      logprobs: field(fc.constant(null), junk),
      logit_bias: field(fc.constant({}), junk),
      presence_penalty: field(fc.constant(0), junk),
      user: field(fc.string({ maxLength: 20 }), junk),
    },
    { requiredKeys: ['prompt'] },
  );
  if (junk === 0) return body;
  const junkKey = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'model_path',
      'MAX_TOKENS',
      'max_tokens ',
      '',
      'stream_options',
      'suffix',
      'best_of',
    ),
  );
  return fc.tuple(body, fc.array(fc.tuple(junkKey, weirdValue()), { maxLength: 2 })).map(([b, extra]) => {
    const o: Record<string, unknown> = { ...b };
    for (const [k, v] of extra) Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
    return o;
  });
}

/** Edits to JSON text: cuts, inserted characters, odd number literals, duplicate or poisoned keys. */
function mutate(text: string, edits: [number, number, number][]): string {
  let t = text;
  for (const [kind, where, pick] of edits) {
    const p = Math.floor(where * (t.length + 1));
    const lit = LITERALS[pick % LITERALS.length]!;
    switch (kind) {
      case 0:
        t = t.slice(0, p);
        break;
      case 1:
        t = t.slice(0, p) + String.fromCharCode(pick % 0x10000) + t.slice(p);
        break;
      case 2:
        t = t.replace(/-?\d+(\.\d+)?([eE][+-]?\d+)?/, lit);
        break;
      case 3:
        t = t.replace('{', `{"max_tokens":${lit},`);
        break;
      case 4:
        t = t.replace('{', pick % 2 ? '{"__proto__":{"max_tokens":1},' : '{"constructor":{"prototype":{"x":1}},');
        break;
      case 5:
        t = t.replace(/}$/, ',}');
        break;
      case 6:
        t = `\ufeff${t}`;
        break;
      case 7:
        t = `${'['.repeat(pick % 20_000)}${t}${']'.repeat(pick % 20_000)}`;
        break;
      default:
        t = t.slice(0, p) + t.slice(Math.min(t.length, p + (pick % 8)));
    }
  }
  return t;
}

/** One request: a body (object, raw JSON, mutated text or bytes) with a content type. */
export function fuzzCase(c: FuzzContext): fc.Arbitrary<FuzzCase> {
  const json = 'application/json';
  const ct = fc.oneof({ arbitrary: fc.constant(json), weight: 12 }, { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 1 });
  const edits = fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat()), {
    minLength: 1,
    maxLength: 3,
  });
  const header = fc.option(
    fc.tuple(
      fc.constantFrom('content-encoding', 'x-request-id', 'accept', 'accept-encoding', 'authorization'),
      fc.constantFrom('gzip', 'br', 'identity', 'x', '*', 'Bearer x'),
    ),
    { freq: 8, nil: undefined },
  );
  const of = (body: fc.Arbitrary<string | Uint8Array>, type: fc.Arbitrary<string | undefined> = ct): fc.Arbitrary<FuzzCase> =>
    fc
      .record({ body, contentType: type, header })
      .map(({ body: b, contentType, header: h }) => ({ body: b, contentType, ...(h ? { header: h } : {}) }));
  return fc.oneof(
    { arbitrary: of(completionBody(c, 0).map((b) => JSON.stringify(b))), weight: 4 },
    {
      arbitrary: of(
        fc
          .integer({ min: 1, max: 3 })
          .chain((j) => completionBody(c, j))
          .map((b) => JSON.stringify(b)),
      ),
      weight: 8,
    },
    { arbitrary: of(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v))), weight: 1 },
    { arbitrary: of(fc.tuple(completionBody(c, 1), edits).map(([b, e]) => mutate(JSON.stringify(b), e))), weight: 3 },
    { arbitrary: of(fc.uint8Array({ maxLength: 300 })), weight: 1 },
    {
      arbitrary: of(
        completionBody(c, 0).map((b) => new TextEncoder().encode(JSON.stringify(b))),
        fc.constant(undefined),
      ),
      weight: 1,
    },
  );
}

/** A client that hangs up: where, and with which prompt. */
export function disconnectCase(c: Pick<FuzzContext, 'vocab'>): fc.Arbitrary<DisconnectCase> {
  return fc.record({
    phase: fc.constantFrom<DisconnectPhase>('headers', 'body', 'sent', 'stream'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    events: fc.integer({ min: 0, max: 20 }),
    promptIds: fc.array(fc.integer({ min: 0, max: c.vocab - 1 }), { minLength: 1, maxLength: 30 }),
  });
}

/** A request (mostly) or a client that hangs up (`disconnectWeight` in 10, 0–9). */
export function fuzzAction(c: FuzzContext, disconnectWeight = 1): fc.Arbitrary<FuzzAction> {
  return fc.oneof(
    { arbitrary: fuzzCase(c).map((x): FuzzAction => ({ kind: 'request', c: x })), weight: 10 - disconnectWeight },
    { arbitrary: disconnectCase(c).map((x): FuzzAction => ({ kind: 'disconnect', d: x })), weight: disconnectWeight },
  );
}

/** Send one case; judge the answer. A request still unanswered after `timeoutMs` is a hang. */
export async function sendCase(url: string, c: FuzzCase, timeoutMs = 10_000): Promise<Verdict> {
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (c.header) headers[c.header[0]] = c.header[1];
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers,
      body: typeof c.body === 'string' ? c.body : new Uint8Array(c.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return {
      ok: false,
      status: 0,
      problem:
        err.name === 'TimeoutError'
          ? `hang: no complete answer within ${timeoutMs} ms`
          : `connection failed: ${err.message} ${err.cause?.code ?? ''}`,
    };
  }
  return judge(res.status, res.headers.get('content-type') ?? '', text);
}

/** Is this answer well-formed: a 200 body or stream, or a 4xx OpenAI error? */
export function judge(status: number, contentType: string, text: string): Verdict {
  const bad = (problem: string): Verdict => ({ ok: false, status, problem: `${problem}: ${text.slice(0, 300)}` });
  if (status >= 500) return bad(`server error ${status}`);
  if (status === 200 && contentType.startsWith('text/event-stream')) {
    if (!text.endsWith('data: [DONE]\n\n')) return bad('stream did not end with [DONE]');
    const events = text
      .split('\n\n')
      .filter((e) => e !== '')
      .map((e) => e.replace(/^data: /, ''));
    for (const e of events.slice(0, -1)) {
      let chunk: { error?: unknown; choices?: unknown };
      try {
        chunk = JSON.parse(e) as typeof chunk;
      } catch {
        return bad('stream event is not JSON');
      }
      if (chunk.error !== undefined) return bad('stream carried an error event');
      if (!Array.isArray(chunk.choices)) return bad('stream chunk without choices');
    }
    return { ok: true, status, stream: true };
  }
  if (!contentType.startsWith('application/json')) return bad(`status ${status} with content-type '${contentType}'`);
  let json: {
    error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown };
    choices?: { finish_reason?: unknown }[];
    usage?: unknown;
  };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return bad(`status ${status} with a body that is not JSON`);
  }
  if (status === 200) {
    const fr = json.choices?.[0]?.finish_reason;
    if ((fr !== 'stop' && fr !== 'length') || typeof json.usage !== 'object') return bad('200 without a finished choice and usage');
    return { ok: true, status, stream: false };
  }
  if (status < 400) return bad(`unexpected status ${status}`);
  const e = json.error;
  const nullOrString = (v: unknown): boolean => v === null || typeof v === 'string';
  if (
    !e ||
    typeof e.message !== 'string' ||
    e.message === '' ||
    typeof e.type !== 'string' ||
    !nullOrString(e.param) ||
    !nullOrString(e.code)
  ) {
    return bad(`${status} without an OpenAI-shaped error`);
  }
  return { ok: true, status, stream: false };
}

/**
 * A raw-socket client that hangs up at `d.phase`. Resolves with the SSE events it read once the
 * socket is closed (it never waits longer than `timeoutMs`).
 */
export function disconnectingClient(
  url: string,
  c: Pick<FuzzContext, 'modelName' | 'maxTokens'>,
  d: DisconnectCase,
  timeoutMs = 10_000,
): Promise<number> {
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({
    model: c.modelName,
    prompt: d.promptIds,
    max_tokens: c.maxTokens,
    temperature: 0,
    stream: d.phase === 'stream',
  });
  const head = `POST /v1/completions HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return new Promise((resolveEvents) => {
    let events = 0;
    const sock = connect(Number(port), hostname);
    const guard = setTimeout(() => sock.destroy(), timeoutMs);
    const hangUp = (): void => void sock.destroy();
    sock.on('close', () => {
      clearTimeout(guard);
      resolveEvents(events);
    });
    sock.on('error', () => {});
    let status: string | undefined;
    sock.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      status ??= text.slice(0, 12);
      events += text.split('data: ').length - 1;
      // Hang up after `d.events` events, or once the answer is complete (a refusal, a short generation).
      if ((d.phase === 'stream' && events >= d.events) || status !== 'HTTP/1.1 200' || text.includes('[DONE]')) hangUp();
    });
    sock.on('connect', () => {
      if (d.phase === 'headers') {
        sock.write(head.slice(0, Math.floor(d.at * (head.length - 1))));
        setImmediate(hangUp);
      } else if (d.phase === 'body') {
        sock.write(head + body.slice(0, Math.floor(d.at * (body.length - 1))));
        setImmediate(hangUp);
      } else {
        sock.write(head + body);
        if (d.phase === 'sent') setTimeout(hangUp, Math.floor(d.at * 50));
      }
    });
  });
}

export interface FuzzReport {
  requests: number;
  disconnects: number;
  byStatus: Record<string, number>;
  streams: number;
  failures: { problem: string; body: string }[];
  ms: number;
}

/** Run `n` actions, `concurrency` at a time, drawn from fuzzAction with seeds seed, seed+1, … */
export async function runServeFuzz(
  url: string,
  c: FuzzContext,
  o: { n: number; seed: number; concurrency: number; disconnectWeight?: number; timeoutMs?: number; onProgress?: (done: number) => void },
): Promise<FuzzReport> {
  const t0 = performance.now();
  const report: FuzzReport = { requests: 0, disconnects: 0, byStatus: {}, streams: 0, failures: [], ms: 0 };
  const arb = fuzzAction(c, o.disconnectWeight ?? 1);
  let next = 0;
  let batch: FuzzAction[] = [];
  const BATCH = 100;
  const take = (): FuzzAction | undefined => {
    if (next >= o.n) return undefined;
    if (next % BATCH === 0) batch = fc.sample(arb, { seed: o.seed + next / BATCH, numRuns: BATCH });
    return batch[next++ % BATCH];
  };
  const worker = async (): Promise<void> => {
    for (let a = take(); a; a = take()) {
      if (a.kind === 'disconnect') {
        await disconnectingClient(url, c, a.d, o.timeoutMs);
        report.disconnects++;
      } else {
        const v = await sendCase(url, a.c, o.timeoutMs);
        report.requests++;
        report.byStatus[v.status] = (report.byStatus[v.status] ?? 0) + 1;
        if (v.ok && v.stream) report.streams++;
        if (!v.ok)
          report.failures.push({
            problem: v.problem,
            body: typeof a.c.body === 'string' ? a.c.body.slice(0, 300) : `<${a.c.body.length} bytes>`,
          });
      }
      if ((report.requests + report.disconnects) % 500 === 0) o.onProgress?.(report.requests + report.disconnects);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  report.ms = performance.now() - t0;
  return report;
}

async function main(): Promise<void> {
  const { parseArgs, startServe } = await import('../../bench/serve-common.js');
  const args = parseArgs(process.argv.slice(2));
  const n = Number(args.get('requests') ?? 5000);
  const seed = Number(args.get('seed') ?? 1);
  const concurrency = Number(args.get('concurrency') ?? 8);
  let dir = args.get('_');
  let cleanup = (): void => {};
  let vocab = Number(args.get('vocab') ?? 50277);
  if (!dir) {
    const { exportTinyModels } = await import('../helpers/server.js');
    const m = await exportTinyModels(seed);
    dir = m.text;
    cleanup = m.cleanup;
    vocab = 320;
  }
  const ctx: FuzzContext = { modelName: 'bench', vocab, maxTokens: 16, maxPromptTokens: 256 };
  const server = await startServe(dir, [
    '--max-tokens',
    '16',
    '--max-prompt-tokens',
    '256',
    '--body-limit-kb',
    '64',
    '--max-batch',
    '8',
    '--max-queue',
    '64',
    '--request-timeout',
    '10',
    '--cache-mb',
    '8',
  ]);
  const rss0 = server.rss();
  let crashed = false;
  server.child.on('exit', () => (crashed = true));
  try {
    const rssAt: [number, number][] = []; // [actions done, server RSS MiB]
    const onProgress = (k: number): void => {
      if (!crashed) rssAt.push([k, Math.round(server.rss() / 2 ** 20)]);
      process.stderr.write(`${k}/${n}\r`);
    };
    const r = await runServeFuzz(server.url, ctx, { n, seed, concurrency, onProgress });
    if (crashed) r.failures.push({ problem: `the server exited (code ${server.child.exitCode})`, body: '' });
    const metrics = async (): Promise<(name: string) => number> => {
      const text = crashed ? '' : await (await fetch(`${server.url}/metrics`)).text();
      return (name) =>
        Number(
          text
            .split('\n')
            .find((l) => l.startsWith(`${name} `))
            ?.split(' ')[1] ?? NaN,
        );
    };
    // Hung-up clients leave at the next step boundary: give the engine a moment to settle.
    let after = await metrics();
    for (let i = 0; i < 100 && !crashed && (after('mamba2_active_slots') !== 0 || after('mamba2_queue_length') !== 0); i++) {
      await new Promise((res) => setTimeout(res, 50));
      after = await metrics();
    }
    const health = crashed ? 0 : (await fetch(`${server.url}/health`)).status;
    const rss1 = crashed ? NaN : server.rss();
    const crashes = crashed ? 1 : 0; // before stop(): its exit is the expected one
    const exit = crashed ? server.child.exitCode : await server.stop();
    const serverErrors = r.failures.filter((f) => f.problem.startsWith('server error')).length;
    const hangs = r.failures.filter((f) => f.problem.startsWith('hang')).length;
    const summary = {
      requests: r.requests,
      disconnects: r.disconnects,
      seconds: Math.round(r.ms / 1000),
      byStatus: r.byStatus,
      streams: r.streams,
      failures: r.failures.length,
      serverErrors,
      hangs,
      crashes,
      activeSlotsAfter: after('mamba2_active_slots'),
      queuedAfter: after('mamba2_queue_length'),
      cancelled: after('mamba2_requests_total{outcome="cancelled"}'),
      healthAfter: health,
      serverExitCode: exit,
      rssMiB: { start: Math.round(rss0 / 2 ** 20), end: Math.round(rss1 / 2 ** 20), samples: rssAt },
      firstFailures: r.failures.slice(0, 10),
    };
    if (args.has('json')) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      process.stdout.write(
        `${r.requests} requests + ${r.disconnects} hang-ups in ${summary.seconds} s (concurrency ${concurrency}, seed ${seed}); status ${JSON.stringify(r.byStatus)}, ${r.streams} streams\n` +
          `failures ${r.failures.length} (5xx ${serverErrors}, hangs ${hangs}, crashes ${summary.crashes}); after: active slots ${summary.activeSlotsAfter}, queued ${summary.queuedAfter}, ` +
          `cancelled ${summary.cancelled}, /health ${health}; server exit ${exit}\n` +
          `server RSS MiB: start ${summary.rssMiB.start}, ${rssAt
            .filter((_, i) => i % Math.max(1, Math.floor(rssAt.length / 8)) === 0)
            .map(([k, m]) => `${m} @${k}`)
            .join(', ')}, end ${summary.rssMiB.end}\n`,
      );
      for (const f of r.failures.slice(0, 10)) process.stdout.write(`  ${f.problem}\n    body: ${f.body}\n`);
    }
    if (r.failures.length > 0 || crashes > 0 || exit !== 0 || health !== 200 || summary.activeSlotsAfter !== 0 || summary.queuedAfter !== 0)
      process.exitCode = 1;
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    cleanup();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) await main();
