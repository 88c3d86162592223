// The little Redis client the worker stand-in needs (AUTH, BLPOP, LPUSH over RESP on one TCP
// connection). A full client costs each worker start ~0.2 s of CPU to load, and the crash tests start
// the workers again at every step. Replies come back in order; a lost connection fails what is in
// flight, and the next command connects again.
import { connect } from 'node:net';

/** RESP request: an array of bulk strings. */
function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join('');
}

/** One reply from buf at off: { value, off } past it, or null when more bytes are needed. */
function parse(buf, off) {
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, off: next };
    case '-':
      return { value: new Error(line), off: next };
    case ':':
      return { value: Number(line), off: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, off: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), off: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, off: next };
      const items = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, at);
        if (!r) return null;
        items.push(r.value);
        at = r.off;
      }
      return { value: items, off: at };
    }
    default:
      throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
  }
}

export function redisClient({ host, port, password }) {
  let socket = null;
  let ready = null; // the connection (and AUTH) in progress or done
  let pending = []; // { resolve, reject } in send order
  let buf = Buffer.alloc(0);

  const fail = (err) => {
    const waiting = pending;
    pending = [];
    buf = Buffer.alloc(0);
    socket?.destroy();
    socket = null;
    ready = null;
    for (const p of waiting) p.reject(err);
  };

  const onData = (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      let r;
      try {
        r = parse(buf, off);
      } catch (e) {
        return fail(e);
      }
      if (!r) break;
      off = r.off;
      const p = pending.shift();
      if (r.value instanceof Error) p?.reject(r.value);
      else p?.resolve(r.value);
    }
    buf = buf.subarray(off);
  };

  const write = (args) =>
    new Promise((resolve, reject) => {
      // lost between the connect and this command: nothing is queued on a connection that is gone
      if (!socket) return reject(new Error('connection closed'));
      pending.push({ resolve, reject });
      socket.write(encode(args));
    });

  const open = () =>
    (ready ??= new Promise((resolve, reject) => {
      const s = connect({ host, port });
      socket = s;
      s.on('data', onData);
      s.on('error', (e) => (s === socket ? fail(e) : undefined));
      s.on('close', () => (s === socket ? fail(new Error('connection closed')) : undefined));
      s.once('connect', () => {
        if (!password) return resolve();
        write(['AUTH', password]).then(
          () => resolve(),
          (e) => {
            fail(e);
            reject(e);
          },
        );
      });
      // fail() above has already forgotten this connection: the next command connects again
      s.once('error', reject);
      s.once('close', () => reject(new Error('connection closed')));
    }));

  return {
    /** true while connected */
    get connected() {
      return socket !== null && !socket.connecting;
    },
    async command(...args) {
      await open();
      return write(args);
    },
    disconnect() {
      const s = socket;
      socket = null;
      ready = null;
      s?.end();
    },
  };
}
