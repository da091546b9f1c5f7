/**
 * The HTTP surface (fastify): routes, API-key check, errors in OpenAI's shape, and the states in
 * which requests are refused (503 while loading, after a failed load, while shutting down).
 *
 *   GET  /health               200 {status: ok} | 503 {status: loading | failed | draining}
 *   GET  /metrics              Prometheus text
 *   GET  /v1/models            the one served model       GET /v1/models/:id
 *   POST /v1/completions       JSON or SSE (completions.ts)
 *   POST /v1/chat/completions  400: no chat template (Mamba-2 base models have none)
 *
 * Another method on one of these paths is a 405 with `Allow`; CONNECT, a missing Host header,
 * malformed URLs and JSON bodies with prototype-pollution keys get errors in OpenAI's shape too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { handleCompletion } from './completions.js';
import type { Engine } from './engine.js';
import { ApiError, clipInput, invalid, toApiError, unavailable } from './errors.js';
import { prometheusText } from './metrics.js';
import type { ServeOptions } from './options.js';
import { parseJsonBody } from './validate.js';

/** What the routes read; the server (server.ts) changes it as the model loads and shuts down. */
export interface AppContext {
  readonly opts: ServeOptions;
  engine: Engine | undefined;
  loadError: Error | undefined;
  draining: boolean;
  /** Unix seconds of start-up (the model's `created`). */
  readonly created: number;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The engine when requests may be served, else the 503 that says why not. */
function engineOf(ctx: AppContext): Engine {
  if (ctx.draining) throw unavailable('the server is shutting down', 'shutting_down');
  if (ctx.loadError) throw unavailable(`the model failed to load: ${ctx.loadError.message}`, 'model_load_failed');
  if (!ctx.engine) throw unavailable('the model is still loading; retry shortly', 'model_loading');
  return ctx.engine;
}

/** Write an error in OpenAI's shape straight to a socket that Node's HTTP layer no longer serves, and close it. */
function writeSocketError(socket: Socket, e: ApiError, cause?: Error, headers = ''): void {
  const body = JSON.stringify(e.body());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\n${headers}Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(cause);
}

/**
 * Errors Node raises before a request reaches fastify's routes (a request not received within the
 * request timeout, headers over the size limit, malformed HTTP): the status with an error body in
 * OpenAI's shape (fastify's default writes its own shape), then the connection is closed.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message, code]: [number, string, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request timeout: the whole request was not received in time', 'request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'request headers too large', 'headers_too_large']
        : [400, `malformed HTTP request (${err.code ?? 'parse error'})`, 'bad_request'];
  writeSocketError(socket, new ApiError(status, message, 'invalid_request_error', null, code), err);
}

/** Methods of every route (GET routes answer HEAD too): what a 405's Allow lists for CONNECT. */
const ALL_ROUTE_METHODS = 'GET, HEAD, POST';

/** The 405 for `method` on a path served with other methods. */
const methodNotAllowed = (method: string, path: string, allow: string): ApiError =>
  new ApiError(
    405,
    `method ${clipInput(method)} is not allowed on ${clipInput(path)}; allowed: ${allow}`,
    'invalid_request_error',
    null,
    'method_not_allowed',
  );

/**
 * Errors fastify's router raises before routing (a path parameter over its length limit, a bad
 * percent-escape in the path): OpenAI's shape, the URL clipped (fastify's own body echoes it whole).
 */
function frameworkError(err: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  const path = clipInput((request.raw.url ?? '').split('?')[0] ?? '');
  const e =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError(
          414,
          `URI too long: a segment of the path is over the length limit (${path})`,
          'invalid_request_error',
          null,
          'uri_too_long',
        )
      : err.code === 'FST_ERR_BAD_URL'
        ? new ApiError(400, `bad URL: the path is not validly percent-encoded (${path})`, 'invalid_request_error', null, 'bad_url')
        : toApiError(err);
  void reply.code(e.status).send(e.body());
}

export function createApp(ctx: AppContext): FastifyInstance {
  const o = ctx.opts;
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeoutMs,
    forceCloseConnections: 'idle',
    // Check request deadlines every second (Node's default is every 30 s). A missing Host header
    // is refused by the onRequest hook below, in OpenAI's shape (Node's own 400 has no body).
    http: { connectionsCheckingInterval: Math.min(1000, o.requestTimeoutMs), requireHostHeader: false },
    return503OnClosing: true,
    clientErrorHandler,
    frameworkErrors: frameworkError,
  });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is a 415
  // fastify's JSON parser refuses prototype-pollution keys as "not valid JSON": this one names them.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  // CONNECT (a proxy tunnel) never reaches the routes: Node hands the socket over, or drops it unanswered.
  app.server.on('connect', (_req: unknown, socket: Socket) => {
    writeSocketError(
      socket,
      new ApiError(405, 'method CONNECT is not allowed: this server is not a proxy', 'invalid_request_error', null, 'method_not_allowed'),
      undefined,
      `Allow: ${ALL_ROUTE_METHODS}\r\n`,
    );
  });
  // Node's header deadline must not exceed the whole-request deadline (slow-loris).
  app.server.headersTimeout = Math.min(app.server.headersTimeout, o.requestTimeoutMs);

  app.addHook('onRequest', async (request, reply) => {
    const { httpVersionMajor: major, httpVersionMinor: minor } = request.raw;
    if ((major > 1 || (major === 1 && minor >= 1)) && request.headers.host === undefined) {
      reply.code(400).header('connection', 'close');
      return reply.send(invalid(null, 'missing Host header: HTTP/1.1 requests must send one', 'missing_host').body());
    }
    return undefined;
  });

  const keyDigest = o.apiKey !== undefined ? digest(`Bearer ${o.apiKey}`) : undefined;
  app.addHook('onRequest', async (request, reply) => {
    if (!keyDigest || request.url === '/health') return;
    const got = request.headers.authorization;
    if (typeof got !== 'string' || !timingSafeEqual(digest(got), keyDigest)) {
      reply.code(401);
      return reply.send(
        new ApiError(
          401,
          'missing or incorrect API key: send Authorization: Bearer <key>',
          'authentication_error',
          null,
          'invalid_api_key',
        ).body(),
      );
    }
    return undefined;
  });

  app.setErrorHandler((err, request, reply) => {
    const e = toApiError(err);
    if (e.status >= 500 && e.status !== 503)
      o.log('error', `${request.method} ${request.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (reply.sent || reply.raw.headersSent) return;
    void reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(
        new ApiError(
          404,
          `no route ${clipInput(request.method)} ${clipInput(request.url.split('?')[0] ?? '')}`,
          'not_found_error',
          null,
          'unknown_route',
        ).body(),
      );
  });

  /** Each path's methods as routes are declared (GET answers HEAD too), for the 405s below. */
  const allowed = new Map<string, string[]>();
  const route = (method: 'GET' | 'POST', url: string): string => {
    allowed.set(url, [...(allowed.get(url) ?? []), ...(method === 'GET' ? ['GET', 'HEAD'] : [method])]);
    return url;
  };

  app.get(route('GET', '/health'), async (_request, reply) => {
    const status = ctx.draining ? 'draining' : ctx.loadError ? 'failed' : ctx.engine ? 'ok' : 'loading';
    reply.code(status === 'ok' ? 200 : 503);
    return { status, model: o.modelName };
  });

  app.get(route('GET', '/metrics'), async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    const extra = { ready: ctx.engine !== undefined, draining: ctx.draining, model: o.modelName };
    if (!ctx.engine)
      return `# HELP mamba2_ready 1 when the model is loaded and requests are accepted\n# TYPE mamba2_ready gauge\nmamba2_ready 0\n`;
    return prometheusText(ctx.engine.stats(), extra);
  });

  const modelCard = (): object => ({ id: o.modelName, object: 'model', created: ctx.created, owned_by: 'mamba2-onnx' });
  app.get(route('GET', '/v1/models'), async () => ({ object: 'list', data: [modelCard()] }));
  app.get<{ Params: { id: string } }>(route('GET', '/v1/models/:id'), async (request) => {
    if (request.params.id !== o.modelName) {
      throw new ApiError(
        404,
        `model: the model '${clipInput(request.params.id)}' does not exist, this server serves '${o.modelName}'`,
        'not_found_error',
        'model',
        'model_not_found',
      );
    }
    return modelCard();
  });

  app.post(route('POST', '/v1/completions'), async (request, reply) => handleCompletion(request, reply, engineOf(ctx), o));

  app.post(route('POST', '/v1/chat/completions'), async () => {
    engineOf(ctx);
    throw invalid(
      'messages',
      'messages: chat completions need a chat template, and this model has none (Mamba-2 base checkpoints are not chat models); use POST /v1/completions with a prompt',
      'chat_template_missing',
    );
  });

  // Any other method on a known path: 405 with Allow (the router alone would answer 404). Refused
  // in onRequest, before a body is read or parsed.
  for (const [url, methods] of allowed) {
    const allow = methods.join(', ');
    app.route({
      method: app.supportedMethods.filter((m) => !methods.includes(m)),
      url,
      exposeHeadRoute: false,
      onRequest: async (request, reply) => {
        reply.code(405).header('allow', allow);
        return reply.send(methodNotAllowed(request.method, request.url.split('?')[0] ?? '', allow).body());
      },
      handler: async () => undefined,
    });
  }
  return app;
}
