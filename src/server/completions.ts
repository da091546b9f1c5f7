/**
 * POST /v1/completions: validate, hand the request to the engine, answer as one JSON body or as
 * server-sent events in OpenAI's chunk format (`data: {...}` per token, a last chunk with the
 * finish_reason, optionally a usage chunk, then `data: [DONE]`). A client that disconnects aborts
 * its sequence, which frees the slot at the next step boundary.
 *
 * Beside OpenAI's fields each choice carries `token_ids` (the new ids; models without a
 * tokenizer have no text).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FinishReason } from '../runtime/decoder.js';
import type { Engine } from './engine.js';
import { ApiError } from './errors.js';
import type { SequenceResult, SequenceSink, TokenChunk } from './sequence.js';
import { parseCompletionRequest, type CompletionRequest } from './validate.js';
import type { ServeOptions } from './options.js';

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** OpenAI's finish_reason: 'length' for the token budget, 'stop' for a stop id or a stop string. */
export type OpenAiFinishReason = 'stop' | 'length';

/** The runtime's finish reason as OpenAI reports it (the only place the two vocabularies meet). */
export const openAiFinishReason = (r: FinishReason): OpenAiFinishReason => (r === 'length' ? 'length' : 'stop');

const usageOf = (r: SequenceResult): Usage => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens,
  prompt_tokens_details: { cached_tokens: r.cachedTokens },
});

/** The request as the engine sees it, checked against the model and the server's limits. */
export function checkCompletion(body: unknown, engine: Engine, opts: ServeOptions): CompletionRequest {
  const model = engine.model;
  const tok = model.tokenizer;
  return parseCompletionRequest(body, {
    modelName: opts.modelName,
    realVocabSize: model.config.realVocabSize,
    maxPromptTokens: opts.maxPromptTokens,
    maxTokens: opts.maxTokens,
    defaultMaxTokens: opts.defaultMaxTokens,
    encode: tok ? (text) => tok.encode(text) : undefined,
  });
}

/** Abort `controller` when the client goes away before the response is complete. */
function abortOnDisconnect(res: ServerResponse, controller: AbortController): void {
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  });
}

export async function handleCompletion(request: FastifyRequest, reply: FastifyReply, engine: Engine, opts: ServeOptions): Promise<unknown> {
  const req = checkCompletion(request.body, engine, opts);
  const id = `cmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: 'text_completion' as const, created, model: opts.modelName };
  const controller = new AbortController();
  abortOnDisconnect(reply.raw, controller);
  const spec = { promptIds: req.promptIds, maxTokens: req.maxTokens, sampling: req.sampling, stop: req.stop };

  if (!req.stream) {
    const result = await new Promise<SequenceResult>((resolve, reject) => {
      const sink: SequenceSink = { token: () => {}, done: resolve, fail: reject };
      controller.signal.addEventListener(
        'abort',
        () => reject(new ApiError(499, 'client disconnected', 'invalid_request_error', null, 'client_closed')),
        { once: true },
      );
      engine.submit(spec, sink, controller.signal); // throws 429/503 synchronously: reject via the promise
    });
    return {
      ...base,
      choices: [
        {
          text: result.text,
          index: 0,
          logprobs: null,
          finish_reason: openAiFinishReason(result.finishReason),
          token_ids: result.outputIds,
        },
      ],
      usage: usageOf(result),
      system_fingerprint: `seed-${result.seed}`,
    };
  }

  const res = reply.raw;
  res.on('error', () => controller.abort(new Error('client connection failed')));
  const send = (payload: unknown): void => {
    if (!res.destroyed && !res.writableEnded) res.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  };
  const end = (): void => {
    send('[DONE]');
    if (!res.writableEnded) res.end();
  };
  const usageNull = req.includeUsage ? { usage: null } : {};
  const sink: SequenceSink = {
    token(c: TokenChunk) {
      send({ ...base, choices: [{ text: c.text, index: 0, logprobs: null, finish_reason: null, token_ids: [c.tokenId] }], ...usageNull });
    },
    done(r: SequenceResult) {
      send({
        ...base,
        choices: [{ text: '', index: 0, logprobs: null, finish_reason: openAiFinishReason(r.finishReason), token_ids: [] }],
        ...usageNull,
      });
      if (req.includeUsage) send({ ...base, choices: [], usage: usageOf(r) });
      end();
    },
    fail(e: Error) {
      const err =
        e instanceof ApiError
          ? e
          : new ApiError(500, 'generation failed on the server (see the server log)', 'server_error', null, 'internal_error');
      send(err.body());
      end();
    },
  };
  engine.submit(spec, sink, controller.signal); // may throw 429/503: still a normal JSON error here
  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  return reply;
}
