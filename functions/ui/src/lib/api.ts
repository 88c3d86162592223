// The API client: relative URLs (so the pages work at `/` and under `/keeper/`), the bearer token,
// the one error shape `{"error": {"code", "message"}}`. A 401 sends the user back to sign in; a 403
// shows the "administrators only" page.
import { getToken, session, signOut } from './session.ts';
import { errorMessage } from '../../../../runtime/error-message.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** fields named by a 422 (e.g. ["backup_retention_count"]) */
  get fields(): string[] {
    const f = this.body.fields;
    return Array.isArray(f) ? f.filter((x): x is string => typeof x === 'string') : [];
  }
}

/** URL of an API path relative to the page: `api/…` resolves under `/` or `/keeper/` alike. */
export function apiUrl(path: string): string {
  return new URL(path.replace(/^\//, ''), document.baseURI).toString();
}

export function authHeaders(): Record<string, string> {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** Turns a non-2xx response into an ApiError and applies the 401/403 rules. */
export async function failure(res: Response, handleAuth = true): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    /* not JSON: keep the status text */
  }
  const e = (body.error ?? {}) as Record<string, unknown>;
  const err = new ApiError(
    res.status,
    typeof e.code === 'string' ? e.code : `http_${res.status}`,
    typeof e.message === 'string' ? e.message : res.statusText || `HTTP ${res.status}`,
    e,
  );
  if (handleAuth && res.status === 401) signOut(err.message);
  if (handleAuth && res.status === 403 && err.code === 'forbidden') session.view = 'forbidden';
  return err;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(apiUrl(path), { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, 'network', errorMessage(e));
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => api<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);

/** Some routes wrap their payload ({data: …}, {items: …}); accept both shapes. */
export function unwrap<T>(x: unknown, key?: string): T {
  if (x && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if (key && key in o) return o[key] as T;
    if ('data' in o && Object.keys(o).length <= 2) return o.data as T;
  }
  return x as T;
}

/**
 * Uploads an archive with progress (fetch has no upload progress; XMLHttpRequest does), as
 * multipart/form-data: a `file` part and, for an archive encrypted with another passphrase, a
 * `passphrase` field. The server streams the part to the storage dir.
 */
export function upload(
  path: string,
  file: File,
  onProgress: (loaded: number, total: number) => void,
  passphrase?: string,
  headers: Record<string, string> = {},
): { promise: Promise<unknown>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<unknown>((resolve, reject) => {
    xhr.open('POST', apiUrl(path));
    for (const [k, v] of Object.entries({ ...authHeaders(), ...headers })) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, 'network', 'upload interrupted'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled'));
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : undefined);
        } catch {
          resolve(undefined);
        }
        return;
      }
      const res = new Response(xhr.responseText || null, {
        status: xhr.status,
        headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') ?? 'application/json' },
      });
      reject(await failure(res));
    };
    const form = new FormData();
    // the passphrase first, so the server has it before the archive's bytes
    if (passphrase) form.append('passphrase', passphrase);
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
