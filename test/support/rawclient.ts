// Raw-socket Postgres frontend for protocol-level tests (independent of pgnear's own codec), plus a heartbeat client.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { serialize } from 'pg-protocol';

export interface Msg {
  /** One-letter message type, e.g. 'E', 'R', 'Z'. */
  type: string;
  /** Body without the 5-byte header. */
  body: Buffer;
}

export interface PgErrorFields {
  severity?: string;
  code?: string;
  message?: string;
  detail?: string;
  [k: string]: string | undefined;
}

const FIELD_NAMES: Record<string, string> = {
  S: 'severity',
  V: 'severityV',
  C: 'code',
  M: 'message',
  D: 'detail',
  H: 'hint',
};

/** Decode an ErrorResponse / NoticeResponse body. */
export function parseErrorFields(body: Buffer): PgErrorFields {
  const out: PgErrorFields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const k = String.fromCharCode(body[i]);
    const z = body.indexOf(0, i + 1);
    out[FIELD_NAMES[k] ?? k] = body.toString('utf8', i + 1, z);
    i = z + 1;
  }
  return out;
}

export class ServerErrorResponse extends Error {
  constructor(readonly fields: PgErrorFields) {
    super(`${fields.severity} ${fields.code}: ${fields.message}`);
  }
  get code(): string | undefined {
    return this.fields.code;
  }
}

/** An untyped startup-phase packet: int32 length, int32 code, payload. */
export function startupPacket(params: Record<string, string>, major = 3, minor = 0): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  parts.push(Buffer.from([0]));
  const payload = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + payload.length, 0);
  head.writeUInt16BE(major, 4);
  head.writeUInt16BE(minor, 6);
  return Buffer.concat([head, payload]);
}

/** A frame with an arbitrary type byte and body. */
export function typedFrame(type: string | number, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

export const GSSENC_REQUEST: Buffer = (() => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(80877104, 4);
  return b;
})();

export interface LoginResult {
  pid: number;
  secret: number;
  params: Map<string, string>;
  /** Authentication request subtypes the server sent, in order (0 ok, 3 cleartext, 5 md5, 10 SASL, 11, 12). */
  authSubtypes: number[];
  /** Every message received during login. */
  messages: Msg[];
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const hmac = (key: Buffer, msg: string): Buffer => createHmac('sha256', key).update(msg).digest();
const md5hex = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');

/** "md5" + md5(password + user), as pg_authid stores it. */
export function md5Secret(password: string, user: string): string {
  return `md5${md5hex(password + user)}`;
}

export class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;
  closedAt = 0;
  readonly closed: Promise<void>;
  private dataListener = (b: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    this.wake();
  };

  private constructor(readonly socket: net.Socket) {
    socket.on('data', this.dataListener);
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        this.closedAt = Date.now();
        this.wake();
        resolve();
      });
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return this.buf.length;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private waitMore(deadline: number, what: string): Promise<void> {
    if (this.ended) return Promise.reject(new Error(`connection closed while waiting for ${what}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), Math.max(0, deadline - Date.now()));
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Write; errors (EPIPE after the peer closed) are swallowed. */
  write(b: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** One raw byte (the answer to SSLRequest / GSSENCRequest). */
  async readByte(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < 1) await this.waitMore(deadline, 'one byte');
    const b = this.buf[0];
    this.buf = this.buf.subarray(1);
    return b;
  }

  /** Next typed message; rejects on close or timeout. */
  async next(timeoutMs = 5000): Promise<Msg> {
    const m = await this.nextOrClose(timeoutMs);
    if (!m) throw new Error('connection closed while waiting for a message');
    return m;
  }

  /** Next typed message, or null when the peer closed cleanly at a message boundary. */
  async nextOrClose(timeoutMs = 5000): Promise<Msg | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(1);
        if (this.buf.length >= len + 1) {
          const m = { type: String.fromCharCode(this.buf[0]), body: Buffer.from(this.buf.subarray(5, len + 1)) };
          this.buf = this.buf.subarray(len + 1);
          return m;
        }
      }
      if (this.ended) {
        if (this.buf.length === 0) return null;
        throw new Error(`connection closed with ${this.buf.length} bytes of a partial message`);
      }
      await this.waitMore(deadline, 'a message');
    }
  }

  /** Every remaining message until the peer closes (rejects on timeout). */
  async drainUntilClose(timeoutMs = 5000): Promise<Msg[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Msg[] = [];
    for (;;) {
      const m = await this.nextOrClose(Math.max(1, deadline - Date.now()));
      if (!m) return out;
      out.push(m);
    }
  }

  /** Messages up to and including the first of type `type`; an ErrorResponse before it is returned too. */
  async until(type: string, timeoutMs = 5000): Promise<Msg[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Msg[] = [];
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      out.push(m);
      if (m.type === type) return out;
    }
  }

  /** Resolves when the peer closed; rejects after timeoutMs. */
  waitClose(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for the connection to close')), timeoutMs);
      void this.closed.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Send a simple Query and collect messages up to ReadyForQuery. */
  /** SSLRequest, 'S', then a TLS handshake (any certificate): the RawClient speaks over the encrypted socket. */
  static async connectTls(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const s = net.connect({ port, host, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80877103, 4);
    s.write(sslRequest);
    const answer = await new Promise<Buffer>((resolve) => s.once('data', resolve));
    if (answer.toString() !== 'S') throw new Error(`SSLRequest answered ${JSON.stringify(answer.toString())}`);
    const t = tls.connect({ socket: s, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    return new RawClient(t);
  }

  async query(sql: string, timeoutMs = 10_000): Promise<Msg[]> {
    this.write(serialize.query(sql));
    return this.until('Z', timeoutMs);
  }

  /** Stop buffering: hand over unconsumed bytes; the caller attaches its own 'data' listener. */
  detach(): Buffer {
    this.socket.off('data', this.dataListener);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /**
   * Full login as a real client would: StartupMessage, then answers cleartext, md5 or SCRAM-SHA-256 requests,
   * up to ReadyForQuery. Throws ServerErrorResponse when the server sends an ErrorResponse.
   */
  async login(
    opts: { user: string; password?: string; database?: string; params?: Record<string, string>; startup?: Buffer },
    timeoutMs = 10_000,
  ): Promise<LoginResult> {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    this.write(
      opts.startup ?? startupPacket({ user: opts.user, database: opts.database ?? 'postgres', ...(opts.params ?? {}) }),
    );
    const res: LoginResult = { pid: 0, secret: 0, params: new Map(), authSubtypes: [], messages: [] };
    let scram: { bare: string; nonce: string; serverSignature?: Buffer } | null = null;
    const password = opts.password ?? '';
    for (;;) {
      const m = await this.next(left());
      res.messages.push(m);
      switch (m.type) {
        case 'E':
          throw new ServerErrorResponse(parseErrorFields(m.body));
        case 'R': {
          const sub = m.body.readInt32BE(0);
          res.authSubtypes.push(sub);
          const data = m.body.subarray(4);
          if (sub === 3) this.write(serialize.password(password));
          else if (sub === 5) {
            const inner = md5hex(password + opts.user);
            this.write(serialize.password(`md5${md5hex(Buffer.concat([Buffer.from(inner), data.subarray(0, 4)]))}`));
          } else if (sub === 10) {
            const mechs = data.toString('utf8').split('\0').filter(Boolean);
            if (!mechs.includes('SCRAM-SHA-256')) throw new Error(`no SCRAM-SHA-256 in ${mechs.join(',')}`);
            const nonce = randomBytes(18).toString('base64');
            scram = { nonce, bare: `n=*,r=${nonce}` };
            this.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${scram.bare}`));
          } else if (sub === 11) {
            if (!scram) throw new Error('SASLContinue without SASL');
            const serverFirst = data.toString('utf8');
            const a = new Map(serverFirst.split(',').map((p) => [p[0], p.slice(2)] as [string, string]));
            const r = a.get('r')!;
            if (!r.startsWith(scram.nonce)) throw new Error('server nonce does not extend the client nonce');
            const salted = pbkdf2Sync(
              password.normalize('NFKC'),
              Buffer.from(a.get('s')!, 'base64'),
              Number(a.get('i')),
              32,
              'sha256',
            );
            const clientKey = hmac(salted, 'Client Key');
            const withoutProof = `c=biws,r=${r}`;
            const authMessage = `${scram.bare},${serverFirst},${withoutProof}`;
            const sig = hmac(sha256(clientKey), authMessage);
            const proof = Buffer.alloc(32);
            for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ sig[i];
            scram.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
            this.write(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${proof.toString('base64')}`));
          } else if (sub === 12) {
            const v = data.toString('utf8');
            if (!scram?.serverSignature || v !== `v=${scram.serverSignature.toString('base64')}`) {
              throw new Error(`bad SCRAM server signature: ${v}`);
            }
          } else if (sub !== 0) throw new Error(`unsupported auth request ${sub}`);
          break;
        }
        case 'S': {
          const [k, v] = m.body.toString('utf8').split('\0');
          res.params.set(k, v);
          break;
        }
        case 'K':
          res.pid = m.body.readInt32BE(0);
          res.secret = m.body.readInt32BE(4);
          break;
        case 'Z':
          return res;
        default:
          break;
      }
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Poll `fn` until it returns a truthy value (for conditions with no event to wait on). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timeout waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A client running `select 1` in a loop; any failure is recorded. */
export interface Heartbeat {
  readonly errors: Error[];
  readonly count: number;
  /** Resolves after `n` more successful queries (rejects if the heartbeat fails or times out). */
  beats(n?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startHeartbeat(url: string, pauseMs = 5): Promise<Heartbeat> {
  const client = new pg.Client({ connectionString: url, application_name: 'heartbeat' });
  const errors: Error[] = [];
  const ev = new EventEmitter();
  let count = 0;
  let running = true;
  client.on('error', (e) => {
    errors.push(e);
    ev.emit('fail');
  });
  await client.connect();
  const loop = (async () => {
    while (running) {
      try {
        const r = await client.query('select 1 as one');
        if (r.rows[0]?.one !== 1) throw new Error(`heartbeat got ${JSON.stringify(r.rows)}`);
        count++;
        ev.emit('beat');
      } catch (e) {
        if (running) {
          errors.push(e as Error);
          ev.emit('fail');
        }
        return;
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    errors,
    get count() {
      return count;
    },
    beats(n = 3, timeoutMs = 5000) {
      const target = count + n;
      return new Promise((resolve, reject) => {
        if (errors.length) return reject(errors[0]);
        const done = (err?: Error) => {
          clearTimeout(t);
          ev.off('beat', onBeat);
          ev.off('fail', onFail);
          if (err) reject(err);
          else resolve();
        };
        const onBeat = () => count >= target && done();
        const onFail = () => done(errors[0]);
        const t = setTimeout(() => done(new Error(`heartbeat stalled at ${count} (wanted ${target})`)), timeoutMs);
        ev.on('beat', onBeat);
        ev.on('fail', onFail);
      });
    },
    async stop() {
      running = false;
      await loop;
      await client.end().catch(() => {});
    },
  };
}
