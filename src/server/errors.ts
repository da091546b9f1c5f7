/**
 * Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`. Every client mistake
 * is an ApiError with a 4xx status and the offending field in `param`; anything else is a 500
 * whose message says it is the server's fault.
 */

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Characters of user input an error message quotes before it is cut. */
export const ECHO_MAX = 64;

/**
 * User input (a field value or name, a URL) as an error quotes it: whole when at most `max`
 * characters, else its first `max` (never half a surrogate pair) and its size, `mmm…(900000 bytes)`.
 * Every error that echoes what the client sent goes through this, so no reply grows with the input.
 */
export function clipInput(s: string, max = ECHO_MAX): string {
  if (s.length <= max) return s;
  const end = s.charCodeAt(max - 1) >= 0xd800 && s.charCodeAt(max - 1) <= 0xdbff ? max - 1 : max;
  return `${s.slice(0, end)}…(${Buffer.byteLength(s)} bytes)`;
}

/** 400 for a bad request field; `param` names it (`max_tokens`, `stop[1]`). */
export const invalid = (param: string | null, message: string, code: string | null = null): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

/** 429: every slot is busy and the waiting queue is full. */
export class QueueFullError extends ApiError {
  constructor(limit: number) {
    super(429, `the server is busy: ${limit} requests are already waiting for a slot; retry later`, 'rate_limit_error', null, 'queue_full');
  }
}

/** 503: the model is still loading, failed to load, or the server is shutting down. */
export const unavailable = (message: string, code: string): ApiError => new ApiError(503, message, 'service_unavailable', null, code);

/** The fastify error codes that are a client's mistake, mapped to a status and a message prefix. */
const CLIENT_ERRORS: Record<string, { status: number; code: string; param: string | null }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', param: null },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', param: null },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', param: null },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', param: null },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_content_length', param: null },
};

/**
 * Any error thrown while handling a request → an ApiError. Fastify's own client errors (bad JSON,
 * body too large, wrong content type) keep their 4xx; errors with a 4xx `statusCode` keep it too.
 * Everything else is a 500 (the server's fault: the message is generic, details go to `log`).
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { code?: unknown; statusCode?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const known = typeof err?.code === 'string' ? CLIENT_ERRORS[err.code] : undefined;
  if (known) return new ApiError(known.status, message, 'invalid_request_error', known.param, known.code);
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, message, 'invalid_request_error', null, typeof err.code === 'string' ? err.code : null);
  }
  return new ApiError(500, 'internal server error (see the server log)', 'server_error', null, 'internal_error');
}
