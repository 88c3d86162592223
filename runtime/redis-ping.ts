// Redis PING over a bare socket: what a health probe needs (AUTH when a password is set, then PING),
// without loading a client library into every process that probes (ioredis alone is ~20 MiB).
import { connect } from 'node:net';

/** One RESP command as an array of bulk strings: binary-safe, so a password needs no escaping. */
const command = (...args: string[]): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/**
 * Resolves when Redis at host:port answers PING with PONG (after AUTH when `password` is set); throws
 * with Redis's own error line otherwise. The password goes over the socket only.
 */
export function redisPing(o: { host: string; port: number; password?: string; timeoutMs?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port });
    const expected = o.password ? ['+OK', '+PONG'] : ['+PONG'];
    let buf = '';
    const done = (e?: Error) => {
      socket.destroy();
      if (e) reject(e);
      else resolve();
    };
    socket.setTimeout(o.timeoutMs ?? 3000, () => done(new Error(`no answer from Redis at ${o.host}:${o.port} within ${o.timeoutMs ?? 3000} ms`)));
    socket.on('error', (e) => done(e));
    socket.on('connect', () => socket.write((o.password ? command('AUTH', o.password) : '') + command('PING')));
    socket.setEncoding('utf8').on('data', (t: string) => {
      buf += t;
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const want = expected.shift();
        if (line !== want) return done(new Error(line.startsWith('-') ? line.slice(1) : `PING answered ${line}`));
        if (!expected.length) return done();
      }
    });
    socket.on('end', () => done(new Error('Redis closed the connection')));
  });
}
