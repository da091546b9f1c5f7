/**
 * Bad requests get the right 4xx in OpenAI's error shape (the field named in `param`), never a
 * 500, and the server keeps answering; plus 429 (queue full), 503 (loading), 413 (body limit) and
 * the slow-client deadline.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mamba2Model } from '../runtime/model.js';
import type { RunningServer } from './server.js';
import { exportTinyModels, loadModel, postJson, serve, type TinyModels } from '../../test/helpers/server.js';

let models: TinyModels;
let model: Mamba2Model;
let s: RunningServer;

beforeAll(async () => {
  models = await exportTinyModels();
  model = await loadModel(models.plain);
  s = await serve(model, { maxPromptTokens: 64, maxTokens: 100, bodyLimit: 4096, requestTimeoutMs: 600 });
  await s.ready;
});

afterAll(async () => {
  await s?.shutdown();
  await model?.release();
  models?.cleanup();
});

const ok = { model: 'tiny', prompt: [1, 2, 3], max_tokens: 2 };

const CASES: [string, unknown, number, string | null][] = [
  ['invalid JSON', '{"prompt": [1, 2', 400, null],
  ['a JSON array body', '[1, 2]', 400, null],
  ['no prompt', { model: 'tiny' }, 400, 'prompt'],
  ['a prompt of the wrong type', { ...ok, prompt: 12 }, 400, 'prompt'],
  ['an empty prompt', { ...ok, prompt: [] }, 400, 'prompt'],
  ['a token id out of vocab', { ...ok, prompt: [1, 256] }, 400, 'prompt'],
  ['a fractional token id', { ...ok, prompt: [1.5] }, 400, 'prompt'],
  ['a prompt over the limit', { ...ok, prompt: Array.from({ length: 65 }, () => 1) }, 400, 'prompt'],
  ['several prompts', { ...ok, prompt: [[1], [2]] }, 400, 'prompt'],
  ['negative max_tokens', { ...ok, max_tokens: -1 }, 400, 'max_tokens'],
  ['oversized max_tokens', { ...ok, max_tokens: 101 }, 400, 'max_tokens'],
  ['max_tokens as a string', { ...ok, max_tokens: '5' }, 400, 'max_tokens'],
  ['temperature out of range', { ...ok, temperature: 3 }, 400, 'temperature'],
  ['top_p of 0', { ...ok, top_p: 0 }, 400, 'top_p'],
  ['a fractional seed', { ...ok, seed: 1.5 }, 400, 'seed'],
  ['stop without a tokenizer', { ...ok, stop: 'x' }, 400, 'stop'],
  ['stop of the wrong type', { ...ok, stop: 5 }, 400, 'stop'],
  ['stream as a string', { ...ok, stream: 'yes' }, 400, 'stream'],
  ['n > 1', { ...ok, n: 2 }, 400, 'n'],
  ['an unknown field', { ...ok, max_token: 5 }, 400, 'max_token'],
  ['a field naming a file', { ...ok, model_path: '/etc/passwd' }, 400, 'model_path'],
  ['another model', { ...ok, model: '../../etc/passwd' }, 404, 'model'],
];

describe('bad requests', () => {
  it.each(CASES)('%s', async (_what, body, status, param) => {
    const r = await postJson(`${s.url}/v1/completions`, body);
    expect(r.status, JSON.stringify(r.json)).toBe(status);
    const err = r.json.error as { message: string; type: string; param: string | null };
    expect(err.message).toEqual(expect.any(String));
    expect(err.type).toEqual(expect.any(String));
    expect(err.param).toBe(param);
    expect((await postJson(`${s.url}/v1/completions`, ok)).status).toBe(200); // still serving
  });

  it('a body over the limit is a 413; a wrong content type a 415; an unknown route a 404', async () => {
    const big = await postJson(`${s.url}/v1/completions`, { ...ok, user: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    const form = await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    expect(form.status).toBe(415);
    const nowhere = await fetch(`${s.url}/v2/anything`);
    expect(nowhere.status).toBe(404);
    expect(((await nowhere.json()) as { error: { type: string } }).error.type).toBe('not_found_error');
  });

  it('a client that sends half a request is cut off after the request timeout', async () => {
    const { port } = new URL(s.url);
    const closed = await new Promise<{ ms: number; data: string }>((resolve, reject) => {
      const t0 = Date.now();
      let data = '';
      const sock = connect(Number(port), '127.0.0.1', () => sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro'));
      sock.on('data', (d) => (data += d.toString()));
      sock.on('close', () => resolve({ ms: Date.now() - t0, data }));
      sock.on('error', reject);
      setTimeout(() => reject(new Error('the server kept a half-sent request open for 5 s')), 5_000).unref();
    });
    expect(closed.ms).toBeGreaterThanOrEqual(500);
    expect(closed.data).toMatch(/^HTTP\/1\.1 408/);
    expect((await postJson(`${s.url}/v1/completions`, ok)).status).toBe(200);
  });
});

describe('load states', () => {
  it('answers 503 while the model loads, then serves', async () => {
    let release!: (m: Mamba2Model) => void;
    const pending = new Promise<Mamba2Model>((r) => (release = r));
    const late = await serve(() => pending);
    try {
      expect((await fetch(`${late.url}/health`)).status).toBe(503);
      const r = await postJson(`${late.url}/v1/completions`, ok);
      expect(r.status).toBe(503);
      expect((r.json.error as { code: string }).code).toBe('model_loading');
      release(await loadModel(models.plain));
      await late.ready;
      expect((await fetch(`${late.url}/health`)).status).toBe(200);
      expect((await postJson(`${late.url}/v1/completions`, ok)).status).toBe(200);
    } finally {
      await late.shutdown(); // releases the model it loaded
    }
  });

  it('429 when every slot is busy and the queue is full', async () => {
    const busy = await serve(model, { maxBatch: 1, maxQueue: 1, maxTokens: 1_000_000 });
    try {
      const long = { ...ok, max_tokens: 1_000_000 };
      const controllers = [new AbortController(), new AbortController()];
      const running = controllers.map((c) => fetch(`${busy.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(long), signal: c.signal }).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 200)); // one decoding, one queued
      const r = await postJson(`${busy.url}/v1/completions`, ok);
      expect(r.status).toBe(429);
      expect((r.json.error as { code: string }).code).toBe('queue_full');
      for (const c of controllers) c.abort();
      await Promise.all(running);
    } finally {
      await busy.shutdown(0);
    }
  });
});
