/**
 * The server under hostile or careless clients (real HTTP on 127.0.0.1, tiny random-weight model):
 * fuzzed /v1/completions bodies, clients that hang up at random moments, a burst past the queue,
 * slow-loris bodies, 100 max-token requests at once, and SIGTERM mid-stream on the CLI. After each,
 * no slot is held, nothing is queued and a normal request still works.
 * Longer fuzz runs: `npx tsx test/fuzz/serve.ts --requests 5000`.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disconnectCase, disconnectingClient, fuzzCase, runServeFuzz, sendCase, type FuzzContext } from './fuzz/serve.js';
import type { Mamba2Model } from '../src/runtime/model.js';
import type { RunningServer } from '../src/server/server.js';
import { eventually, exportTinyModels, loadModel, metric, postJson, serve, type TinyModels } from './helpers/server.js';

const ROOT = resolve(import.meta.dirname, '..');
const SEED = Number(process.env.FUZZ_SEED ?? 11);
let models: TinyModels;
let model: Mamba2Model; // vocab 320 with a byte-level BPE tokenizer: text and token-id prompts
let plain: Mamba2Model; // vocab 256, no tokenizer and no EOS: a generation runs to max_tokens

beforeAll(async () => {
  models = await exportTinyModels();
  model = await loadModel(models.text);
  plain = await loadModel(models.plain);
});

afterAll(async () => {
  await model?.release();
  await plain?.release();
  models?.cleanup();
});

/** Nothing holds a slot or waits, /health is 200 and a normal request completes. */
async function expectIdleAndServing(s: RunningServer): Promise<void> {
  await eventually(async () => (await metric(s.url, 'mamba2_active_slots')) === 0 && (await metric(s.url, 'mamba2_queue_length')) === 0);
  expect(await metric(s.url, 'mamba2_decoding_sequences')).toBe(0);
  expect(await metric(s.url, 'mamba2_prefilling_sequences')).toBe(0);
  expect(await metric(s.url, 'mamba2_requests_total{outcome="error"}')).toBe(0);
  expect((await fetch(`${s.url}/health`)).status).toBe(200);
  const r = await postJson(`${s.url}/v1/completions`, { model: 'tiny', prompt: [1, 2, 3], max_tokens: 4, temperature: 0 });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  expect((r.json.usage as { completion_tokens: number }).completion_tokens).toBeGreaterThan(0);
}

const post = (url: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

describe('request fuzzing', () => {
  const ctx: FuzzContext = { modelName: 'tiny', vocab: 320, maxTokens: 8, maxPromptTokens: 256 };
  let s: RunningServer;
  beforeAll(async () => {
    s = await serve(model, {
      maxTokens: ctx.maxTokens,
      defaultMaxTokens: 4,
      maxPromptTokens: ctx.maxPromptTokens,
      bodyLimit: 64 * 1024,
      maxBatch: 8,
      maxQueue: 1000,
    });
    await s.ready;
  });
  afterAll(() => s?.shutdown());

  it('random bodies, field types, number literals, unicode, bytes, content types: a 200 or a 4xx OpenAI error, never a 5xx or a hang', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fuzzCase(ctx), async (c) => {
        const v = await sendCase(s.url, c, 10_000);
        statuses.add(v.status);
        if (!v.ok) throw new Error(v.problem);
      }),
      { numRuns: 400, seed: SEED },
    );
    // the generators reach both valid requests and each kind of refusal
    for (const status of [200, 400, 404, 413, 415]) expect(statuses, `statuses seen: ${[...statuses].join(', ')}`).toContain(status);
    await expectIdleAndServing(s);
  });

  it('8 concurrent clients, some hanging up: no failure, no slot left behind', async () => {
    const r = await runServeFuzz(s.url, ctx, { n: 400, seed: SEED + 1000, concurrency: 8, disconnectWeight: 2, timeoutMs: 10_000 });
    expect(r.failures).toEqual([]);
    expect(r.requests + r.disconnects).toBe(400);
    expect(r.disconnects).toBeGreaterThan(20);
    expect(r.byStatus[200]).toBeGreaterThan(20);
    await expectIdleAndServing(s);
  });
});

describe('clients that hang up at random moments', () => {
  it('in the headers, mid-body, right after sending, mid-stream: every slot and queue entry is freed', async () => {
    const s = await serve(plain, { maxTokens: 1_000_000, maxBatch: 3, maxQueue: 64 });
    try {
      const ctx = { modelName: 'tiny', maxTokens: 1_000_000 }; // the hung-up requests would never end by themselves
      const cases = fc.sample(disconnectCase({ vocab: 256 }), { seed: SEED, numRuns: 60 });
      for (const phase of ['headers', 'body', 'sent', 'stream']) expect(cases.some((d) => d.phase === phase)).toBe(true);
      for (let wave = 0; wave < cases.length; wave += 20) {
        // 20 at once over 3 slots: most hang up while queued or mid-generation
        const events = await Promise.all(cases.slice(wave, wave + 20).map((d) => disconnectingClient(s.url, ctx, d, 10_000)));
        expect(events.length).toBe(20);
      }
      await expectIdleAndServing(s);
      const reached = cases.filter((d) => d.phase === 'sent' || d.phase === 'stream').length;
      // a request cut right after sending may be dropped by Node before it reaches the engine
      const cancelled = await metric(s.url, 'mamba2_requests_total{outcome="cancelled"}');
      expect(cancelled).toBeGreaterThan(0);
      expect(cancelled).toBeLessThanOrEqual(reached);
    } finally {
      await s.shutdown(0);
    }
  });
});

describe('a full queue', () => {
  it('a burst past slots + queue gets 429s in OpenAI shape; every admitted request completes; the server recovers', async () => {
    const s = await serve(plain, { maxTokens: 400, maxBatch: 2, maxQueue: 4 });
    try {
      const body = { model: 'tiny', prompt: [5, 6, 7], max_tokens: 400, temperature: 0 };
      const burst = await Promise.all(
        Array.from({ length: 30 }, async () => {
          const res = await post(s.url, body, AbortSignal.timeout(20_000));
          return {
            status: res.status,
            json: (await res.json()) as { error?: { code: string; type: string }; usage?: { completion_tokens: number } },
          };
        }),
      );
      const ok = burst.filter((r) => r.status === 200);
      const busy = burst.filter((r) => r.status === 429);
      expect(ok.length + busy.length).toBe(30);
      expect(ok.length).toBeGreaterThanOrEqual(6); // 2 slots + 4 queued are always admitted
      expect(busy.length).toBeGreaterThan(0);
      for (const r of ok) expect(r.json.usage?.completion_tokens).toBe(400);
      for (const r of busy) expect(r.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
      expect(await metric(s.url, 'mamba2_requests_total{outcome="rejected"}')).toBe(busy.length);
      await expectIdleAndServing(s);
      // within capacity again: all six are served
      const after = await Promise.all(Array.from({ length: 6 }, () => post(s.url, { ...body, max_tokens: 20 })));
      expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    } finally {
      await s.shutdown(0);
    }
  });
});

/** A raw client that sends `head`, then `trickle` one byte per `everyMs`; resolves when the server closes it. */
function slowClient(url: string, head: string, trickle: string, everyMs: number): Promise<{ ms: number; reply: string; sent: number }> {
  const { port } = new URL(url);
  return new Promise((done, fail) => {
    const t0 = Date.now();
    let reply = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const sock = connect(Number(port), '127.0.0.1', () => {
      sock.write(head);
      timer = setInterval(() => {
        if (sent < trickle.length && !sock.destroyed) sock.write(trickle[sent++]!);
      }, everyMs);
    });
    sock.on('data', (d: Buffer) => (reply += d.toString()));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearInterval(timer);
      done({ ms: Date.now() - t0, reply, sent });
    });
    setTimeout(() => fail(new Error(`a slow client was kept for 10 s (sent ${sent} bytes)`)), 10_000).unref();
  });
}

describe('slow-loris', () => {
  it('bodies and headers trickled one byte a second hit the request timeout (408) while other clients are served', async () => {
    const s = await serve(model, { requestTimeoutMs: 1500 });
    try {
      const body = JSON.stringify({ model: 'tiny', prompt: [1, 2, 3], max_tokens: 2 });
      const head = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
      const slow = [
        slowClient(s.url, head, body, 1000),
        slowClient(s.url, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\n', 'Content-Type: application/json\r\n', 1000),
      ];
      const served: number[] = [];
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        const t = performance.now();
        const r = await postJson(`${s.url}/v1/completions`, { model: 'tiny', prompt: [4, 5], max_tokens: 3 });
        expect(r.status).toBe(200);
        served.push(performance.now() - t);
        await new Promise((r2) => setTimeout(r2, 100));
      }
      expect(served.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...served)).toBeLessThan(2000);
      for (const c of await Promise.all(slow)) {
        expect(c.ms).toBeGreaterThanOrEqual(1400);
        expect(c.ms).toBeLessThan(5000);
        expect(c.sent).toBeLessThan(10); // cut off long before the request was complete
        if (c.reply !== '') expect(errorOf(c.reply, 408)).toMatchObject({ type: 'invalid_request_error', code: 'request_timeout' });
      }
      await expectIdleAndServing(s);
    } finally {
      await s.shutdown(0);
    }
  });
});

/**
 * Send raw bytes, half-close (unless `halfClose` is false: then the server must close the
 * connection itself), collect everything until the server closes (or fail after 5 s).
 */
function rawExchange(url: string, bytes: Uint8Array | string, halfClose = true): Promise<string> {
  const { port } = new URL(url);
  return new Promise((done, fail) => {
    let reply = '';
    const sock = connect(Number(port), '127.0.0.1', () => (halfClose ? sock.end(bytes) : sock.write(bytes)));
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => done(reply));
    setTimeout(() => fail(new Error('the server kept a raw connection open for 5 s')), 5_000).unref();
  });
}

/** The OpenAI-shaped error of a raw HTTP reply with this status. */
function errorOf(reply: string, status: number): unknown {
  expect(reply.startsWith(`HTTP/1.1 ${status} `), reply.slice(0, 100)).toBe(true);
  const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { message: string; param: unknown } };
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.param).toBeNull();
  return body.error;
}

describe('malformed HTTP', () => {
  it('garbage request lines, oversized headers and random bytes get a 4xx in OpenAI shape or a closed socket, never a 5xx', async () => {
    const s = await serve(model);
    try {
      expect(errorOf(await rawExchange(s.url, 'HELLO\r\n\r\n'), 400)).toMatchObject({ code: 'bad_request' });
      expect(
        errorOf(await rawExchange(s.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431),
      ).toMatchObject({ code: 'headers_too_large' });
      const prefix = fc.constantFrom(
        '',
        'POST /v1/completions HTTP/1.1\r\n',
        'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
      );
      await fc.assert(
        fc.asyncProperty(prefix, fc.uint8Array({ maxLength: 200 }), async (p, junk) => {
          const reply = await rawExchange(s.url, Buffer.concat([Buffer.from(p), junk]));
          for (const m of reply.matchAll(/HTTP\/1\.1 (\d{3}) /g)) expect(Number(m[1]), reply.slice(0, 300)).toBeLessThan(500);
        }),
        { numRuns: 150, seed: SEED },
      );
      await expectIdleAndServing(s);
    } finally {
      await s.shutdown(0);
    }
  });

  it('an HTTP/1.1 request without a Host header gets a 400 in OpenAI shape and the connection is closed', async () => {
    const s = await serve(model);
    try {
      const get = await rawExchange(s.url, 'GET /health HTTP/1.1\r\n\r\n', false);
      expect(errorOf(get, 400)).toMatchObject({ type: 'invalid_request_error', code: 'missing_host' });
      expect(get).toMatch(/\r\nconnection: close\r\n/i);
      const post = await rawExchange(
        s.url,
        'POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
        false,
      );
      expect(errorOf(post, 400)).toMatchObject({ code: 'missing_host' });
      // HTTP/1.0 needs no Host
      expect(await rawExchange(s.url, 'GET /health HTTP/1.0\r\n\r\n', false)).toMatch(/^HTTP\/1\.1 200 /);
      await expectIdleAndServing(s);
    } finally {
      await s.shutdown(0);
    }
  });

  it('CONNECT gets a 405 in OpenAI shape and the connection is closed', async () => {
    const s = await serve(model);
    try {
      const reply = await rawExchange(s.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', false);
      expect(errorOf(reply, 405)).toMatchObject({ type: 'invalid_request_error', code: 'method_not_allowed' });
      expect(reply).toMatch(/\r\nconnection: close\r\n/i);
      await expectIdleAndServing(s);
    } finally {
      await s.shutdown(0);
    }
  });
});

describe('memory', () => {
  it('100 requests for the maximum tokens over a small queue: all end (done, 429 or cancelled), RSS growth bounded', async () => {
    const MAX = 256;
    const s = await serve(plain, { maxTokens: MAX, maxBatch: 8, maxQueue: 8, cacheBytes: 2 ** 20 });
    try {
      await Promise.all(
        Array.from({ length: 8 }, (_, k) => postJson(`${s.url}/v1/completions`, { model: 'tiny', prompt: [k + 1, 9], max_tokens: MAX })),
      );
      const rss0 = process.memoryUsage().rss;
      const rng = fc.sample(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 20, max: 400 })), { seed: SEED, numRuns: 100 });
      const outcomes = await Promise.all(
        rng.map(async ([mode, abortMs], k) => {
          const ctl = new AbortController();
          const stream = mode === 1;
          if (mode === 2) setTimeout(() => ctl.abort(), abortMs); // a client that gives up
          const hang = setTimeout(() => ctl.abort(new Error('hang')), 30_000);
          try {
            const res = await post(s.url, { model: 'tiny', prompt: [(k % 250) + 1, 7, 7], max_tokens: MAX, stream }, ctl.signal);
            const text = await res.text();
            if (res.status === 429) return '429';
            expect(res.status, text).toBe(200);
            if (stream) expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
            else expect((JSON.parse(text) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(MAX);
            return 'done';
          } catch (e) {
            if (!ctl.signal.aborted) throw e; // a failed assertion, not a client that gave up
            if (ctl.signal.reason instanceof Error && ctl.signal.reason.message === 'hang') throw new Error(`request ${k} hung`);
            return 'cancelled';
          } finally {
            clearTimeout(hang);
          }
        }),
      );
      const count = (o: string): number => outcomes.filter((x) => x === o).length;
      expect(count('done') + count('429') + count('cancelled')).toBe(100);
      expect(count('429')).toBeGreaterThan(0);
      expect(count('done')).toBeGreaterThan(0);
      expect(count('done') + count('cancelled')).toBeGreaterThanOrEqual(16); // 8 slots + 8 queued are always admitted
      await expectIdleAndServing(s);
      const growthMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
      expect(growthMiB).toBeLessThan(300);
      expect(await metric(s.url, 'mamba2_prefix_cache_bytes')).toBeLessThanOrEqual(2 ** 20);
    } finally {
      await s.shutdown(0);
    }
  });
});

describe('SIGTERM mid-stream (mamba2-onnx serve)', () => {
  it('streams end with [DONE] (finished, or an error event once the grace period is over); the process exits 0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli.ts',
        'serve',
        models.plain,
        '--port',
        '0',
        '--model-name',
        'tiny',
        '--max-tokens',
        '1000000',
        '--shutdown-grace',
        '1',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      await eventually(async () => /ready on cpu/.test(err), 30_000);
      const url = /listening on (http:\/\/\S+)/.exec(err)![1]!;
      const bodies = [1_000_000, 1_000_000, 1_000_000, 300].map((n, k) => ({
        model: 'tiny',
        prompt: [k + 1, 2, 3],
        max_tokens: n,
        temperature: 0,
        stream: true,
      }));
      const streams = bodies.map(async (b) => {
        const res = await post(url, b);
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        let text = '';
        for (;;) {
          const r = await reader.read();
          if (r.done) return text;
          text += new TextDecoder().decode(r.value);
        }
      });
      const jsonInFlight = post(url, { model: 'tiny', prompt: [9, 9], max_tokens: 1_000_000 }); // no EOS: runs until cancelled
      const gauge = (name: string): Promise<number> => metric(url, name);
      await eventually(
        async () => (await gauge('mamba2_decoding_sequences')) + (await gauge('mamba2_requests_total{outcome="ok"}')) === 5,
        10_000,
      );
      child.kill('SIGTERM');
      const texts = await Promise.all(streams);
      for (const text of texts) {
        expect(text.endsWith('data: [DONE]\n\n'), text.slice(-200)).toBe(true);
      }
      // 300 tokens finish within the grace period; the endless ones are cancelled when it is over
      expect(
        texts.map((t) => (/"code":"cancelled"/.test(t) ? 'cancelled' : /"finish_reason":"length"/.test(t) ? 'length' : 'broken')),
      ).toEqual(['cancelled', 'cancelled', 'cancelled', 'length']);
      const j = await jsonInFlight;
      expect(j.status).toBe(503);
      expect(((await j.json()) as { error: { code: string } }).error.code).toBe('cancelled');
      expect(await exited).toBe(0);
      expect(err).toMatch(/SIGTERM: shutting down/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
