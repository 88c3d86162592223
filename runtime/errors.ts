// The one error shape of the whole API: {"error": {"code", "message", ...extra}}. Every error
// response — 404, validation, auth, busy, crashes — goes through here.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as v from 'valibot';

import { errorMessage } from './error-message.ts';

export { errorMessage };

export interface ErrorBody {
  error: { code: string; message: string; [extra: string]: unknown };
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, ...extra } };
}

/** Thrown by handlers and helpers; turned into the JSON error shape by onError. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function jsonError(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): Response {
  return c.json(errorBody(code, message, extra), status);
}

/** app.onError: known errors keep their status; anything else is a 500 without internals. */
export function onError(err: Error, c: Context): Response {
  if (err instanceof HttpError) return jsonError(c, err.status, err.code, err.message, err.extra);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    return jsonError(c, status, status === 401 ? 'unauthorized' : 'http_error', err.message || 'request failed');
  }
  console.error(`[keeper] ${c.req.method} ${c.req.path}:`, err);
  return jsonError(c, 500, 'internal', `internal error: ${err.message}`);
}

/** app.notFound */
export function notFound(c: Context): Response {
  return jsonError(c, 404, 'not_found', `no route ${c.req.method} ${c.req.path}`);
}

/** One message naming each failing field, e.g. "notes: expected a string (got 42)". */
export function describeValidation(issues: v.BaseIssue<unknown>[]): { message: string; fields: string[] } {
  const fields: string[] = [];
  const parts = issues.map((i) => {
    const path = v.getDotPath(i) ?? '(body)';
    fields.push(path);
    return `${path}: ${i.message}`;
  });
  return { message: parts.join('; '), fields: [...new Set(fields)] };
}

/** Validates a value; failure → 422 {error: {code: "invalid_input", message naming the field, fields}}. */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, value);
  if (!r.success) {
    const { message, fields } = describeValidation(r.issues);
    throw new HttpError(422, 'invalid_input', message, { fields });
  }
  return r.output;
}

/** Largest JSON request body: settings, notes and passphrases are small. */
export const JSON_BODY_MAX = 1024 * 1024;

/**
 * The request body as text, read no further than `limit` bytes: a larger body (declared or
 * streamed, chunked included) → 413 as soon as it passes the limit, without reading the rest.
 */
export async function bodyText(c: Context, limit = JSON_BODY_MAX): Promise<string> {
  const tooLarge = () => new HttpError(413, 'too_large', `the request body is larger than ${limit} bytes`);
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads and validates a JSON body. An empty body counts as {} so optional-only schemas accept it;
 * malformed JSON → 400 invalid_json; schema failure → 422 naming the field.
 */
export async function jsonBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  const text = await bodyText(c);
  let json: unknown = {};
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new HttpError(400, 'invalid_json', `the request body is not valid JSON: ${errorMessage(e)}`);
    }
  }
  return validate(schema, json);
}

/** Validates the query string (all values are strings). */
export function queryParams<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  return validate(schema, c.req.query());
}
