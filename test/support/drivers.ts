// Helpers for driver and wire-protocol tests: run CLI tools, wait for events, and a tiny raw protocol client.
import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import { serialize } from 'pg-protocol';

// ---- processes -------------------------------------------------------------------------------------

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion (killed after timeoutMs as a safety net) and capture its output. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Keep libpq from picking up ambient settings (PGPASSWORD, PGSSLMODE, ~/.pgpass) that would mask behaviour.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('PG')) env[k] = v;
    Object.assign(env, { PGCONNECT_TIMEOUT: '10', PSQLRC: '/dev/null' }, opts.env);
    const child = spawn(cmd, args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

// ---- events ----------------------------------------------------------------------------------------

/** Resolve with the first `event` whose argument satisfies `pred`; reject after timeoutMs (safety net). */
export function nextEvent<T = unknown>(
  emitter: EventEmitter,
  event: string,
  pred: (arg: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onEvent = (arg: T) => {
      if (!pred(arg)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(arg);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, onEvent);
  });
}

// ---- raw protocol client ---------------------------------------------------------------------------

export interface BackendMsg {
  /** Message type as a character, e.g. '1', 'Z', 's'. */
  type: string;
  /** Body after the 5-byte header. */
  body: Buffer;
}

export interface RawConnectOptions {
  host?: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  /** Extra startup parameters. */
  params?: Record<string, string>;
}

/** Type characters of messages, concatenated: handy for comparing exact sequences. */
export const typesOf = (msgs: BackendMsg[]): string => msgs.map((m) => m.type).join('');

/** Fields of an ErrorResponse/NoticeResponse keyed by field letter (C = SQLSTATE, M = message). */
export function errorFields(m: BackendMsg): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const code = String.fromCharCode(m.body[i]);
    const end = m.body.indexOf(0, i + 1);
    out[code] = m.body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

/** Column values of a DataRow (null for SQL NULL). */
export function rowValues(m: BackendMsg): (Buffer | null)[] {
  const n = m.body.readInt16BE(0);
  const out: (Buffer | null)[] = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = m.body.readInt32BE(at);
    at += 4;
    if (len < 0) out.push(null);
    else {
      out.push(m.body.subarray(at, at + len));
      at += len;
    }
  }
  return out;
}

/** First column of each DataRow as text. */
export const firstColumn = (msgs: BackendMsg[]): (string | null)[] =>
  msgs.filter((m) => m.type === 'D').map((m) => rowValues(m)[0]?.toString('utf8') ?? null);

/** Null-terminated string at the start of a body: CommandComplete tag, ParameterStatus name. */
export function cstrings(m: BackendMsg): string[] {
  const parts = m.body.toString('utf8').split('\0');
  parts.pop();
  return parts;
}

/** OIDs of a ParameterDescription. */
export function paramTypes(m: BackendMsg): number[] {
  const n = m.body.readInt16BE(0);
  return Array.from({ length: n }, (_, i) => m.body.readUInt32BE(2 + 4 * i));
}

/** Column names and type OIDs of a RowDescription. */
export function rowDescription(m: BackendMsg): { name: string; typeOid: number; format: number }[] {
  const n = m.body.readInt16BE(0);
  const out: { name: string; typeOid: number; format: number }[] = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const end = m.body.indexOf(0, at);
    const name = m.body.toString('utf8', at, end);
    at = end + 1;
    const typeOid = m.body.readUInt32BE(at + 6);
    const format = m.body.readInt16BE(at + 16);
    at += 18;
    out.push({ name, typeOid, format });
  }
  return out;
}

/** FunctionCall ('F'): not in pg-protocol's serializer. Text arguments, text result. */
export function functionCall(oid: number, args: (string | null)[]): Buffer {
  const parts: Buffer[] = [];
  const i16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return b;
  };
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return b;
  };
  parts.push(i32(oid), i16(1), i16(0), i16(args.length));
  for (const a of args) {
    if (a === null) parts.push(i32(-1));
    else {
      const v = Buffer.from(a);
      parts.push(i32(v.length), v);
    }
  }
  parts.push(i16(0));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from('F'), i32(body.length + 4), body]);
}

const hmac = (key: Buffer, s: string) => createHmac('sha256', key).update(s).digest();

/**
 * A deliberately dumb frontend: writes exactly the bytes it is given, and hands back backend messages one by one.
 * Handles cleartext, md5 and SCRAM-SHA-256 authentication.
 */
export class RawPgClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: BackendMsg[] = [];
  private wake: (() => void) | null = null;
  private ended: Error | null = null;
  /** Everything received after authentication completed up to the first ReadyForQuery. */
  startup: BackendMsg[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      while (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(1);
        if (this.buf.length < len + 1) break;
        this.queue.push({ type: String.fromCharCode(this.buf[0]), body: Buffer.from(this.buf.subarray(5, len + 1)) });
        this.buf = this.buf.subarray(len + 1);
      }
      this.poke();
    });
    socket.on('error', (e) => {
      this.ended ??= e;
      this.poke();
    });
    socket.on('close', () => {
      this.ended ??= new Error('connection closed');
      this.poke();
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  static async connect(o: RawConnectOptions): Promise<RawPgClient> {
    const socket = net.connect({ host: o.host ?? '127.0.0.1', port: o.port });
    socket.setNoDelay(true);
    await new Promise<void>((res, rej) => {
      socket.once('connect', res);
      socket.once('error', rej);
    });
    const c = new RawPgClient(socket);
    c.send(serialize.startup({ user: o.user, database: o.database ?? 'postgres', ...o.params }));
    await c.authenticate(o.user, o.password);
    for (;;) {
      const m = await c.next();
      if (m.type === 'E') throw new Error(`login failed: ${JSON.stringify(errorFields(m))}`);
      c.startup.push(m);
      if (m.type === 'Z') return c;
    }
  }

  private async authenticate(user: string, password: string): Promise<void> {
    let scram: { bare: string; nonce: string; authMessage?: string; salted?: Buffer } | null = null;
    for (;;) {
      const m = await this.next();
      if (m.type === 'E') throw new Error(`login failed: ${JSON.stringify(errorFields(m))}`);
      if (m.type !== 'R') throw new Error(`unexpected message '${m.type}' during authentication`);
      const sub = m.body.readInt32BE(0);
      if (sub === 0) return;
      if (sub === 3) this.send(serialize.password(password));
      else if (sub === 5) {
        const inner = createHash('md5')
          .update(password + user)
          .digest('hex');
        const outer = createHash('md5')
          .update(Buffer.concat([Buffer.from(inner), m.body.subarray(4, 8)]))
          .digest('hex');
        this.send(serialize.password(`md5${outer}`));
      } else if (sub === 10) {
        const nonce = randomBytes(18).toString('base64');
        scram = { bare: `n=*,r=${nonce}`, nonce };
        this.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${scram.bare}`));
      } else if (sub === 11 && scram) {
        const first = m.body.toString('utf8', 4);
        const attrs = Object.fromEntries(first.split(',').map((kv) => [kv[0], kv.slice(2)]));
        if (!attrs.r?.startsWith(scram.nonce)) throw new Error('SCRAM: server nonce does not extend ours');
        scram.salted = pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
        const withoutProof = `c=biws,r=${attrs.r}`;
        scram.authMessage = `${scram.bare},${first},${withoutProof}`;
        const clientKey = hmac(scram.salted, 'Client Key');
        const storedKey = createHash('sha256').update(clientKey).digest();
        const sig = hmac(storedKey, scram.authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]));
        this.send(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${proof.toString('base64')}`));
      } else if (sub === 12 && scram?.salted && scram.authMessage) {
        const v = Buffer.from(m.body.toString('utf8', 4).replace(/^v=/, ''), 'base64');
        const expected = hmac(hmac(scram.salted, 'Server Key'), scram.authMessage);
        if (v.length !== expected.length || !timingSafeEqual(v, expected))
          throw new Error('SCRAM: bad server signature');
      } else throw new Error(`unsupported authentication request ${sub}`);
    }
  }

  /** Write all buffers in ONE socket write (a pipeline). */
  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  /** The next backend message (rejects when the connection ends first, or after timeoutMs as a safety net). */
  async next(timeoutMs = 15_000): Promise<BackendMsg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no backend message within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.wake = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  }

  /** Messages up to and including the count-th ReadyForQuery. */
  async untilReady(count = 1): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    while (count > 0) {
      const m = await this.next();
      out.push(m);
      if (m.type === 'Z') count--;
    }
    return out;
  }

  /** Messages up to and including the first one of `type`. */
  async until(type: string): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.type === type) return out;
    }
  }

  /** Messages already received and not yet consumed. */
  buffered(): number {
    return this.queue.length;
  }

  /** Resolves when the server closes the connection. */
  closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((res) => this.socket.once('close', () => res()));
  }

  /** Terminate and wait for the close. */
  async end(): Promise<void> {
    if (this.socket.destroyed) return;
    const done = this.closed();
    this.socket.end(serialize.end());
    await done;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
