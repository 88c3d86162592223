// Serves the built web UI (functions/ui/dist) at `/` and under `/keeper/`: static files, index.html
// for page paths (SPA fallback). No auth on static assets: the API behind them is what is guarded.
// `/keeper/api/*` is the API itself, for a reverse proxy that keeps the /keeper prefix.
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { Context, Hono } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { jsonError, notFound } from '../../runtime/errors.ts';
import { DIST_DIR } from './build.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/** The file under dist for a URL path, or null when it would leave dist. */
function resolveAsset(urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  const file = normalize(join(DIST_DIR, rel));
  return file === DIST_DIR || file.startsWith(DIST_DIR + sep) ? file : null;
}

async function sendFile(c: Context<AppEnv>, file: string, immutable: boolean): Promise<Response | null> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return null;
    size = st.size;
  } catch {
    return null;
  }
  const headers: Record<string, string> = {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': String(size),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  };
  if (extname(file) === '.html') {
    headers['X-Frame-Options'] = 'SAMEORIGIN';
    headers['Referrer-Policy'] = 'same-origin';
  }
  if (c.req.method === 'HEAD') return new Response(null, { status: 200, headers });
  return new Response(Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>, { status: 200, headers });
}

function notBuilt(c: Context<AppEnv>): Response {
  const msg = 'the web UI is not built: run "npm run build:ui" (npm start builds it when missing)';
  if ((c.req.header('accept') ?? '').includes('text/html')) {
    return c.html(`<!doctype html><meta charset="utf-8"><title>phpBorg Keeper</title><p style="font-family:sans-serif">${msg}</p>`, 503);
  }
  return jsonError(c, 503, 'ui_not_built', msg);
}

/** GET / , /assets/… , /keeper/… : a file of the build, else index.html for a page path. */
export async function serveUi(c: Context<AppEnv>): Promise<Response> {
  const path = c.req.path;
  if (path === '/keeper') return c.redirect('/keeper/', 301);
  if (path.startsWith('/api/')) return notFound(c);
  if (!existsSync(join(DIST_DIR, 'index.html'))) return notBuilt(c);
  const rel = path.startsWith('/keeper/') ? path.slice('/keeper'.length) : path;
  if (rel !== '/' && rel !== '/index.html') {
    const file = resolveAsset(rel);
    if (!file) return notFound(c);
    const res = await sendFile(c, file, rel.startsWith('/assets/'));
    if (res) return res;
    // a missing asset is a 404, a page path gets the app (SPA fallback)
    if (rel.startsWith('/assets/') || extname(rel) !== '') return notFound(c);
    if (!(c.req.header('accept') ?? '').includes('text/html')) return notFound(c);
  }
  return (await sendFile(c, join(DIST_DIR, 'index.html'), false)) ?? notBuilt(c);
}

/** `/keeper/api/…` → the same request at `/api/…`, for proxies that keep the prefix. */
export function keeperApi(app: Hono<AppEnv>) {
  return (c: Context<AppEnv>): Response | Promise<Response> => {
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice('/keeper'.length);
    const req = c.req.raw;
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : req.body;
    // duplex: a streamed body (an upload) passes through without being buffered
    const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers: req.headers, body, duplex: body ? 'half' : undefined, signal: req.signal };
    return app.fetch(new Request(url, init), c.env);
  };
}
