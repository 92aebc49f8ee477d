// A minimal Postgres wire-protocol client for opening thousands of idle connections cheaply: startup, trust /
// cleartext / SCRAM-SHA-256 login (the salted password is derived once per salt and cached, so a login costs the
// client a few HMACs instead of 4096 PBKDF2 rounds), an optional `select 1`, then the socket is left idle.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';

export interface RawLogin {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string;
  /** Run one simple-protocol `select 1` after login (so poolers that assign a server lazily use one once). */
  query?: boolean;
  timeoutMs?: number;
}

export interface RawConn {
  socket: net.Socket;
  /** Set once the server closed the connection or it errored after login (an idle client dropped). */
  dropped: string | null;
  close(): Promise<void>;
}

const saltedCache = new Map<string, Buffer>();
function saltedPassword(password: string, salt: string, iterations: number): Buffer {
  const key = `${salt}\0${iterations}\0${password}`;
  let v = saltedCache.get(key);
  if (!v) {
    v = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    saltedCache.set(key, v);
  }
  return v;
}

const hmac = (key: Buffer, s: string) => createHmac('sha256', key).update(s).digest();

function startupMessage(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pgnear-bench-idle\0\0`);
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4);
  body.copy(b, 8);
  return b;
}

/** A frontend message: type byte, Int32 length, body. */
export function message(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

export const cstr = (s: string) => Buffer.from(`${s}\0`);

/** Severity, SQLSTATE and message of an ErrorResponse body. */
export function errorText(body: Buffer): string {
  const parts: string[] = [];
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    if (code === 'S' || code === 'C' || code === 'M') parts.push(body.toString('utf8', i + 1, end));
    i = end + 1;
  }
  return parts.join(' ');
}

/** Open, log in, optionally `select 1`, and resolve with the idle connection (rejects on any error). */
export function rawConnect(o: RawLogin): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    let clientFirstBare = '';
    let clientNonce = '';
    let queried = false;
    const conn: RawConn = {
      socket,
      dropped: null,
      close: () =>
        new Promise<void>((r) => {
          if (socket.destroyed) return r();
          socket.once('close', () => r());
          socket.end(message('X', Buffer.alloc(0)));
          setTimeout(() => socket.destroy(), 2_000).unref();
        }),
    };
    const timer = setTimeout(
      () => fail(new Error(`login timed out after ${o.timeoutMs ?? 60_000} ms`)),
      o.timeoutMs ?? 60_000,
    );
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const ok = () => {
      done = true;
      clearTimeout(timer);
      // From now on the connection idles: drop whatever arrives (ParameterStatus, notices), note a close.
      socket.removeAllListeners('data');
      socket.on('data', () => {});
      resolve(conn);
    };
    socket.once('connect', () => socket.write(startupMessage(o.user, o.database)));
    socket.on('error', (e) => {
      if (!done) fail(e);
      else conn.dropped ??= e.message;
    });
    socket.on('close', () => {
      if (!done) fail(new Error('connection closed during login'));
      else conn.dropped ??= 'closed by the server';
    });
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (!done && buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        try {
          handle(type, body);
        } catch (e) {
          fail(e as Error);
        }
      }
    });
    function handle(type: string, body: Buffer): void {
      if (type === 'E') throw new Error(errorText(body));
      if (type === 'Z') {
        if (o.query && !queried) {
          queried = true;
          socket.write(message('Q', cstr('select 1')));
          return;
        }
        ok();
        return;
      }
      if (type !== 'R') return; // S, K, N, T, D, C: nothing to do
      const code = body.readInt32BE(0);
      switch (code) {
        case 0: // AuthenticationOk
          return;
        case 3: // cleartext
          socket.write(message('p', cstr(o.password)));
          return;
        case 10: {
          // SASL: mechanisms list
          const mechs = body.toString('utf8', 4).split('\0');
          if (!mechs.includes('SCRAM-SHA-256')) throw new Error(`no SCRAM-SHA-256 in ${mechs.join(',')}`);
          clientNonce = randomBytes(18).toString('base64');
          clientFirstBare = `n=,r=${clientNonce}`;
          const first = Buffer.from(`n,,${clientFirstBare}`);
          const len = Buffer.alloc(4);
          len.writeInt32BE(first.length);
          socket.write(message('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, first])));
          return;
        }
        case 11: {
          // SASLContinue: server-first-message
          const serverFirst = body.toString('utf8', 4);
          const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
          const nonce = attrs.r ?? '';
          if (!nonce.startsWith(clientNonce)) throw new Error('SCRAM: server nonce does not extend ours');
          const salted = saltedPassword(o.password, attrs.s ?? '', Number(attrs.i));
          const clientKey = hmac(salted, 'Client Key');
          const storedKey = createHash('sha256').update(clientKey).digest();
          const finalNoProof = `c=biws,r=${nonce}`;
          const authMessage = `${clientFirstBare},${serverFirst},${finalNoProof}`;
          const sig = hmac(storedKey, authMessage);
          const proof = Buffer.alloc(32);
          for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ sig[i]!;
          socket.write(message('p', Buffer.from(`${finalNoProof},p=${proof.toString('base64')}`)));
          return;
        }
        case 12: // SASLFinal (server signature; not verified: this is a load generator)
          return;
        default:
          throw new Error(`unsupported authentication request ${code}`);
      }
    }
  });
}
