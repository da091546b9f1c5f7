/**
 * Slots and shutdown: a client that disconnects mid-stream frees its slot (metrics show it);
 * shutdown lets in-flight requests finish, refuses new ones and cancels what outlives the grace
 * period; `mamba2-onnx serve` exits 0 on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mamba2Model } from '../runtime/model.js';
import { eventually, exportTinyModels, loadModel, metric, postJson, serve, type TinyModels } from '../../test/helpers/server.js';

let models: TinyModels;
let model: Mamba2Model;
const LONG = { model: 'tiny', prompt: [1, 2, 3], max_tokens: 1_000_000, temperature: 0 };

beforeAll(async () => {
  models = await exportTinyModels();
  model = await loadModel(models.plain);
});

afterAll(async () => {
  await model?.release();
  models?.cleanup();
});

describe('client disconnect', () => {
  it('aborting a stream mid-way frees its slot', async () => {
    const s = await serve(model, { maxTokens: 1_000_000 });
    try {
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const stream = await client.completions.create({ ...LONG, stream: true });
      let n = 0;
      for await (const _chunk of stream) if (++n === 5) break; // leaving the loop aborts the request
      await eventually(async () => (await metric(s.url, 'mamba2_active_slots')) === 0);
      expect(await metric(s.url, 'mamba2_requests_total{outcome="cancelled"}')).toBe(1);
      expect(await metric(s.url, 'mamba2_decoding_sequences')).toBe(0);
      expect((await postJson(`${s.url}/v1/completions`, { ...LONG, max_tokens: 3 })).status).toBe(200);
    } finally {
      await s.shutdown();
    }
  });

  it('a non-streaming request whose client goes away is cancelled too', async () => {
    const s = await serve(model, { maxTokens: 1_000_000 });
    try {
      const c = new AbortController();
      const req = fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(LONG),
        signal: c.signal,
      }).catch(() => undefined);
      await eventually(async () => (await metric(s.url, 'mamba2_decoding_sequences')) === 1);
      c.abort();
      await req;
      await eventually(async () => (await metric(s.url, 'mamba2_active_slots')) === 0);
      expect(await metric(s.url, 'mamba2_requests_total{outcome="cancelled"}')).toBe(1);
    } finally {
      await s.shutdown();
    }
  });
});

describe('graceful shutdown', () => {
  it('in-flight requests finish, later ones are refused', async () => {
    const s = await serve(model, { maxTokens: 1_000_000 });
    const inflight = postJson(`${s.url}/v1/completions`, { ...LONG, max_tokens: 300 });
    await eventually(async () => (await metric(s.url, 'mamba2_decoding_sequences')) === 1);
    const done = s.shutdown(10_000);
    const r = await inflight;
    expect(r.status).toBe(200);
    expect((r.json.usage as { completion_tokens: number }).completion_tokens).toBe(300);
    await done;
    await expect(fetch(`${s.url}/health`)).rejects.toThrow(); // no longer listening
  });

  it('streams still running after the grace period are cancelled with an error event and [DONE]', async () => {
    const s = await serve(model, { maxTokens: 1_000_000 });
    const res = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...LONG, stream: true }),
    });
    expect(res.status).toBe(200);
    const body = res.text();
    await eventually(async () => (s.stats()?.decoding ?? 0) === 1);
    await s.shutdown(100);
    const text = await body;
    expect(text).toMatch(/"code":"cancelled"/);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });
});

describe('mamba2-onnx serve', () => {
  it('serves, then exits 0 on SIGTERM', async () => {
    const bin = join(dirname(fileURLToPath(import.meta.url)), '../../bin/mamba2-onnx.js');
    const child = spawn(process.execPath, [bin, 'serve', models.plain, '--port', '0', '--model-name', 'cli'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(async () => /ready on cpu/.test(err), 30_000);
      const url = /listening on (http:\/\/\S+)/.exec(err)![1]!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:/);
      const r = await postJson(`${url}/v1/completions`, { model: 'cli', prompt: [1, 2], max_tokens: 3 });
      expect(r.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).toMatch(/SIGTERM: shutting down/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
