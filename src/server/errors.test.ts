/**
 * Bad requests get the right 4xx in OpenAI's error shape (the field named in `param`), never a
 * 500, and the server keeps answering; plus 429 (queue full), 503 (loading), 413 (body limit) and
 * the slow-client deadline.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mamba2Model } from '../runtime/model.js';
import { clipInput } from './errors.js';
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
      const sock = connect(Number(port), '127.0.0.1', () =>
        sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro'),
      );
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

interface ErrorFields {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** The `error` of a response in OpenAI's shape (exactly message, type, param, code). */
async function errorOfResponse(res: Response): Promise<ErrorFields> {
  const text = await res.text();
  const body = JSON.parse(text) as { error: ErrorFields };
  expect(Object.keys(body).sort(), text).toEqual(['error']);
  expect(Object.keys(body.error).sort(), text).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.message).toEqual(expect.any(String));
  return body.error;
}

describe('wrong methods', () => {
  const WRONG: [string, string, string][] = [
    ['GET', '/v1/completions', 'POST'],
    ['DELETE', '/v1/models', 'GET, HEAD'],
    ['PUT', '/v1/models/tiny', 'GET, HEAD'],
    ['POST', '/health', 'GET, HEAD'],
    ['PATCH', '/metrics', 'GET, HEAD'],
    ['GET', '/v1/chat/completions', 'POST'],
    ['OPTIONS', '/v1/completions', 'POST'],
  ];
  it.each(WRONG)('%s %s is a 405 with Allow: %s, in OpenAI shape', async (method, path, allow) => {
    const res = await fetch(`${s.url}${path}`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    const err = await errorOfResponse(res);
    expect(err).toMatchObject({ type: 'invalid_request_error', param: null, code: 'method_not_allowed' });
    expect(err.message).toBe(`method ${method} is not allowed on ${path}; allowed: ${allow}`);
  });

  it('HEAD on a POST-only route is a 405 with Allow; an unknown path stays a 404', async () => {
    const head = await fetch(`${s.url}/v1/completions`, { method: 'HEAD' });
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('POST');
    const nowhere = await fetch(`${s.url}/v1/nothing`, { method: 'DELETE' });
    expect(nowhere.status).toBe(404);
    expect(nowhere.headers.get('allow')).toBeNull();
    expect((await postJson(`${s.url}/v1/completions`, ok)).status).toBe(200);
  });
});

describe('prototype-pollution keys', () => {
  const POLLUTING: [string, string, string][] = [
    ['__proto__ at the top level', '{"__proto__": {"polluted": 1}, "prompt": [1]}', '__proto__'],
    ['__proto__ spelled with JSON escapes', '{"\\u005f_proto__": {"polluted": 1}, "prompt": [1]}', '__proto__'],
    ['__proto__ in a nested object', '{"prompt": [1], "stream": true, "stream_options": {"__proto__": {}}}', 'stream_options.__proto__'],
    ['__proto__ inside an array', '{"prompt": [1], "stop": [{"__proto__": 1}]}', 'stop[0].__proto__'],
    ['constructor.prototype', '{"constructor": {"prototype": {"polluted": 1}}, "prompt": [1]}', 'constructor.prototype'],
  ];
  it.each(POLLUTING)('%s: 400 naming the key and why, not "invalid JSON"', async (_what, body, param) => {
    const r = await postJson(`${s.url}/v1/completions`, body);
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    const err = r.json.error as ErrorFields;
    expect(err).toMatchObject({ type: 'invalid_request_error', param, code: 'forbidden_key' });
    expect(err.message).toMatch(/^body: the key "(__proto__|constructor)" .*is not allowed \(prototype pollution guard\)$/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('"constructor" as an ordinary value or key is no pollution (an unknown field); bad JSON is still invalid_json', async () => {
    const field = await postJson(`${s.url}/v1/completions`, { ...ok, constructor: 'x' });
    expect(field.json.error as ErrorFields).toMatchObject({ param: 'constructor', code: 'unknown_field' });
    const user = await postJson(`${s.url}/v1/completions`, { ...ok, user: '__proto__' });
    expect(user.status).toBe(200);
    const bad = await postJson(`${s.url}/v1/completions`, '{"prompt": [1, 2');
    expect(bad.status).toBe(400);
    expect(bad.json.error as ErrorFields).toMatchObject({ param: null, code: 'invalid_json' });
    const empty = await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' });
    expect(empty.status).toBe(400);
    expect((await errorOfResponse(empty)).code).toBe('invalid_json');
  });
});

describe('user input echoed in errors', () => {
  let big: RunningServer; // the default 1 MiB body limit: room for a 900 KB field
  beforeAll(async () => {
    big = await serve(model);
    await big.ready;
  });
  afterAll(() => big?.shutdown());

  it('a 900 KB model name or field name is echoed as its first 64 characters and its size', async () => {
    const name = 'm'.repeat(900_000);
    const r = await postJson(`${big.url}/v1/completions`, { model: name, prompt: [1] });
    expect(r.status).toBe(404);
    const err = r.json.error as ErrorFields;
    expect(err.message).toBe(`model: the model '${'m'.repeat(64)}…(900000 bytes)' does not exist, this server serves 'tiny'`);
    const f = await postJson(`${big.url}/v1/completions`, { prompt: [1], ['k'.repeat(900_000)]: 1 });
    expect(f.status).toBe(400);
    const fe = f.json.error as ErrorFields;
    expect(fe.param).toBe(`${'k'.repeat(64)}…(900000 bytes)`);
    expect(fe.message.length).toBeLessThan(400);
    const so = await postJson(`${big.url}/v1/completions`, { prompt: [1], stream: true, stream_options: { ['o'.repeat(1000)]: 1 } });
    expect((so.json.error as ErrorFields).param).toBe(`stream_options.${'o'.repeat(64)}…(1000 bytes)`);
  });

  it('long URLs are clipped in 404s, 405s, over-long path parameters and bad escapes (all in OpenAI shape)', async () => {
    const unknown = await fetch(`${big.url}/v2/${'z'.repeat(4000)}`);
    expect(unknown.status).toBe(404);
    expect((await errorOfResponse(unknown)).message).toBe(`no route GET ${`/v2/${'z'.repeat(4000)}`.slice(0, 64)}…(4004 bytes)`);
    const id = await fetch(`${big.url}/v1/models/${'y'.repeat(2000)}`);
    expect(id.status).toBe(414);
    const ie = await errorOfResponse(id);
    expect(ie).toMatchObject({ type: 'invalid_request_error', code: 'uri_too_long' });
    expect(ie.message).toContain('…(2011 bytes)');
    expect(ie.message.length).toBeLessThan(200);
    const escaped = await fetch(`${big.url}/v1/models/%zz${'q'.repeat(3000)}`);
    expect(escaped.status).toBe(400);
    const ee = await errorOfResponse(escaped);
    expect(ee).toMatchObject({ type: 'invalid_request_error', code: 'bad_url' });
    expect(ee.message).toContain('…(3014 bytes)');
    const wrong = await fetch(`${big.url}/v1/models/${'w'.repeat(90)}`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect((await errorOfResponse(wrong)).message).toBe(
      `method DELETE is not allowed on ${`/v1/models/${'w'.repeat(90)}`.slice(0, 64)}…(101 bytes); allowed: GET, HEAD`,
    );
    const bad = await fetch(`${big.url}/%`);
    expect(bad.status).toBe(400);
    expect((await errorOfResponse(bad)).code).toBe('bad_url');
  });

  it('clipInput: 64 characters, never half a surrogate pair, then the UTF-8 size', () => {
    expect(clipInput('short')).toBe('short');
    expect(clipInput('x'.repeat(64))).toBe('x'.repeat(64));
    expect(clipInput('é'.repeat(100))).toBe(`${'é'.repeat(64)}…(200 bytes)`);
    const emoji = clipInput(`a${'😀'.repeat(40)}`); // a surrogate pair straddles the 64th unit
    expect(emoji).toBe(`a${'😀'.repeat(31)}…(161 bytes)`);
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
      const running = controllers.map((c) =>
        fetch(`${busy.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(long),
          signal: c.signal,
        }).catch(() => undefined),
      );
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
