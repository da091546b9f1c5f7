/**
 * The official `openai` npm client against a real server on loopback: models list, completions
 * (JSON and streaming), text prompts with stop strings through a tokenizer, the API key, and the
 * chat endpoint's clear 400.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mamba2Model } from '../runtime/model.js';
import type { RunningServer } from './server.js';
import { exportTinyModels, loadModel, serve, type TinyModels } from '../../test/helpers/server.js';

let models: TinyModels;
let plain: Mamba2Model;
let text: Mamba2Model;
let ids: RunningServer;
let txt: RunningServer;
const KEY = 'test-key-123456';

beforeAll(async () => {
  models = await exportTinyModels();
  [plain, text] = await Promise.all([loadModel(models.plain), loadModel(models.text)]);
  ids = await serve(plain, { modelName: 'tiny-ids' });
  txt = await serve(text, { modelName: 'tiny-text', apiKey: KEY });
  await Promise.all([ids.ready, txt.ready]);
});

afterAll(async () => {
  await Promise.all([ids?.shutdown(), txt?.shutdown()]);
  await Promise.all([plain?.release(), text?.release()]);
  models?.cleanup();
});

const client = (s: RunningServer, apiKey = 'unused'): OpenAI => new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });

describe('openai client, token-id model', () => {
  it('binds loopback by default and lists the model', async () => {
    expect(ids.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const list = await client(ids).models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny-ids']);
    expect((await client(ids).models.retrieve('tiny-ids')).owned_by).toBe('mamba2-onnx');
  });

  it('completes a token-id prompt with usage and finish_reason', async () => {
    const r = await client(ids).completions.create({ model: 'tiny-ids', prompt: [5, 6, 7, 8], max_tokens: 6, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.finish_reason).toBe('length');
    const tokenIds = (r.choices[0] as unknown as { token_ids: number[] }).token_ids;
    expect(tokenIds).toHaveLength(6);
    expect(r.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
  });

  it('streams chunks that add up to the JSON answer, ending with usage', async () => {
    const body = { model: 'tiny-ids', prompt: [9, 10, 11], max_tokens: 7, temperature: 0.7, seed: 42 };
    const whole = await client(ids).completions.create(body);
    const stream = await client(ids).completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    const got: number[] = [];
    const finish: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        got.push(...(c as unknown as { token_ids: number[] }).token_ids);
        finish.push(c.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(got).toEqual((whole.choices[0] as unknown as { token_ids: number[] }).token_ids);
    expect(finish.filter((f) => f !== null)).toEqual(['length']);
    expect(usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 7 });
  });

  it('a text prompt without a tokenizer is a 400 naming prompt', async () => {
    const err = await client(ids)
      .completions.create({ model: 'tiny-ids', prompt: 'hello' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('prompt');
  });
});

describe('openai client, model with a tokenizer and an API key', () => {
  it('refuses a wrong key with 401, accepts the right one', async () => {
    await expect(client(txt, 'wrong').models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await client(txt, KEY).models.list()).data[0]!.id).toBe('tiny-text');
    expect((await fetch(`${txt.url}/health`)).status).toBe(200); // health needs no key
  });

  it('completes text, and the streamed text equals the JSON text', async () => {
    const c = client(txt, KEY);
    const body = { model: 'tiny-text', prompt: 'hello world', max_tokens: 12, temperature: 0 } as const;
    const whole = await c.completions.create(body);
    expect(whole.usage!.prompt_tokens).toBeGreaterThan(0);
    let streamed = '';
    for await (const chunk of await c.completions.create({ ...body, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(whole.choices[0]!.text);
  });

  it('cuts the text before a stop string', async () => {
    const c = client(txt, KEY);
    const base = await c.completions.create({ model: 'tiny-text', prompt: 'hello', max_tokens: 24, temperature: 0 });
    const full = base.choices[0]!.text;
    expect(base.choices[0]!.finish_reason).toBe('length'); // long enough to pick a stop string from
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 1);
    const r = await c.completions.create({ model: 'tiny-text', prompt: 'hello', max_tokens: 24, temperature: 0, stop: [stop] });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.choices[0]!.text).toBe(full.slice(0, full.indexOf(stop)));
  });

  it('chat completions: a clear 400 (no chat template)', async () => {
    const err = await client(txt, KEY)
      .chat.completions.create({ model: 'tiny-text', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(/chat template/);
  });
});
