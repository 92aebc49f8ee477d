// One server connection: TCP (optionally TLS) connect, startup and login, internal queries, and close.
import net from 'node:net';
import tls from 'node:tls';
import {
  decodeAuth,
  decodeBackendKeyData,
  decodeErrorFields,
  decodeParameterStatus,
  readyStatus,
} from '../protocol/backend.js';
import { BE, type TxStatus } from '../protocol/codes.js';
import { FrameScanner, WATCH_ALL } from '../protocol/framer.js';
import { encodeQuery, TERMINATE } from '../protocol/frontend.js';
import { SSL_REQUEST, encodeStartup } from '../protocol/startup.js';
import type { ServerCredentials } from './credentials.js';
import { ServerAuthError, ServerLogin } from './server-login.js';

export interface ServerTarget {
  /** Node name for logs and metrics. */
  node: string;
  host: string;
  port: number;
  /** TLS toward the server: disable, prefer (if offered) or require. */
  sslmode: 'disable' | 'prefer' | 'require';
}

/** Error the server sent (ErrorResponse fields), or a connection failure with a pgnear-chosen SQLSTATE. */
export class ServerError extends Error {
  readonly code = 'PGNEAR_E_SERVER';
  constructor(
    message: string,
    readonly sqlstate: string,
    /** The server's own ErrorResponse frame, to forward verbatim when present. */
    readonly frame: Buffer | null = null,
    readonly severity = 'FATAL',
  ) {
    super(message);
  }
}

let nextId = 1;

/**
 * Who reads a logged-in server between internal queries (the pool while it is idle, a relay while it is lent):
 * one permanent set of socket listeners dispatches to it, so lending a server costs a field write, not six
 * listener changes per transaction.
 */
export interface ServerReader {
  /** Bytes from the server; on a plaintext server they live in a reused buffer (see retainsChunk). */
  onData(chunk: Buffer): void;
  onDrain(): void;
  onClose(): void;
  /**
   * Asked right after onData: may bytes of that chunk still be referenced (e.g. queued in a client socket's write
   * buffer)? Then the next read goes into a fresh buffer instead of overwriting them.
   */
  retainsChunk(): boolean;
}

/** Read size of a plaintext server connection (what Node allocates per read by default). */
const READ_SIZE = 64 * 1024;

export class ServerConn {
  readonly id = nextId++;
  readonly params = new Map<string, string>();
  pid = 0;
  secret = 0;
  txStatus: TxStatus = 'I';
  readonly createdAt = Date.now();
  lastUsedAt = Date.now();
  closed = false;
  /** Why it closed, for logs. */
  closeReason = '';
  /** Receives data, drain and close while set (see ServerReader). */
  reader: ServerReader | null = null;
  /** Login and internal queries read the server here, ahead of the reader. */
  private consumer: ((chunk: Buffer) => void) | null = null;
  /** Plaintext servers are read into this buffer, reused while nobody still references the last chunk. */
  private readBuf: Buffer | null = null;
  private freshBuf = true;

  private constructor(
    readonly target: ServerTarget,
    public socket: net.Socket,
  ) {
    // Failures surface through 'close'; an unhandled 'error' must never crash the process.
    socket.on('error', () => {});
  }

  /** Connect, negotiate TLS, log in and wait for the first ReadyForQuery. */
  static async connect(
    target: ServerTarget,
    startup: Iterable<[string, string]>,
    creds: ServerCredentials,
    user: string,
    timeoutMs: number,
  ): Promise<ServerConn> {
    // Plaintext: Node's `onread` reads into our buffer and skips the Readable stream machinery and a 64 KB
    // allocation per read (the hot path reads each server once per transaction). TLS keeps 'data' events.
    // Node asks for the first buffer inside net.connect, before the ServerConn exists.
    let self: ServerConn | null = null;
    const onread =
      target.sslmode === 'disable'
        ? {
            buffer: (): Buffer => self?.nextReadBuffer() ?? Buffer.allocUnsafeSlow(READ_SIZE),
            callback: (n: number, b: Uint8Array): boolean => self!.onRead(n, b as Buffer),
          }
        : undefined;
    const raw = net.connect({ host: target.host, port: target.port, noDelay: true, onread });
    const conn = (self = new ServerConn(target, raw));
    const timer = setTimeout(
      () => raw.destroy(new ServerError(`timeout connecting to server ${target.node}`, '08006')),
      timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        raw.once('connect', resolve);
        raw.once('error', reject);
      });
      if (target.sslmode !== 'disable') {
        conn.socket = await negotiateTls(raw, target);
        conn.socket.on('error', () => {});
        // 'prefer' may continue on raw in plain text; either way data arrives as events here.
        conn.socket.on('data', (chunk: Buffer) => conn.deliver(chunk));
      }
      await conn.login(startup, creds, user);
      const sock = conn.socket;
      sock.on('drain', () => conn.reader?.onDrain());
      sock.on('close', () => conn.reader?.onClose());
      return conn;
    } catch (e) {
      conn.socket.destroy();
      raw.destroy();
      if (e instanceof ServerError) throw e;
      // pgnear holds no secret the server accepts: an authorization problem, not an unreachable server.
      if (e instanceof ServerAuthError) throw new ServerError(e.message, '28000');
      throw new ServerError(`could not connect to server ${target.node}: ${(e as Error).message}`, '08006');
    } finally {
      clearTimeout(timer);
    }
  }

  private login(startup: Iterable<[string, string]>, creds: ServerCredentials, user: string): Promise<void> {
    const sock = this.socket;
    const auth = new ServerLogin(creds, user);
    const scanner = new FrameScanner(WATCH_ALL, 1 << 24, true);
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.consumer = null;
        sock.off('error', onErr);
        sock.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const sink = {
        passthrough: () => {},
        frame: (type: number, f: Buffer): boolean => {
          switch (type) {
            case BE.Authentication: {
              const { subtype, data } = decodeAuth(f);
              const reply = auth.respond(subtype, data);
              if (reply) sock.write(reply);
              break;
            }
            case BE.ParameterStatus: {
              const [k, v] = decodeParameterStatus(f);
              this.params.set(k, v);
              break;
            }
            case BE.BackendKeyData:
              ({ pid: this.pid, secret: this.secret } = decodeBackendKeyData(f));
              break;
            case BE.ReadyForQuery:
              this.txStatus = readyStatus(f);
              done();
              break;
            case BE.ErrorResponse: {
              const fields = decodeErrorFields(f);
              done(
                new ServerError(
                  fields.get('M') ?? 'server error',
                  fields.get('C') ?? 'XX000',
                  Buffer.from(f),
                  fields.get('S'),
                ),
              );
              break;
            }
            case BE.NegotiateProtocolVersion:
            case BE.NoticeResponse:
              break;
            default:
              done(new ServerError(`unexpected message "${String.fromCharCode(type)}" during server login`, '08P01'));
          }
          return false;
        },
      };
      const onData = (chunk: Buffer) => {
        try {
          scanner.push(chunk, sink);
        } catch (e) {
          done(e as Error);
        }
      };
      const onErr = (e: Error) => done(e);
      const onClose = () => done(new ServerError('server closed the connection during login', '08006'));
      this.consumer = onData;
      sock.on('error', onErr);
      sock.on('close', onClose);
      sock.write(encodeStartup(startup));
    });
  }

  /**
   * Run one simple query on an idle, detached connection; resolves with the first column of each row
   * (text) or rejects with the server's error. Used for resets, probes and LSN capture, never for clients.
   */
  query(sql: string, timeoutMs = 10_000): Promise<(string | null)[]> {
    const sock = this.socket;
    const scanner = new FrameScanner(WATCH_ALL, 1 << 26, true);
    const rows: (string | null)[] = [];
    let error: ServerError | null = null;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new ServerError('internal query timed out', '57014')), timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        if (this.consumer === onData) this.consumer = null;
        sock.off('close', onClose);
        if (err) {
          this.close(err.message);
          reject(err);
        } else if (error) reject(error);
        else resolve(rows);
      };
      const sink = {
        passthrough: () => {},
        frame: (type: number, f: Buffer): boolean => {
          if (type === BE.DataRow) {
            const n = f.readInt16BE(5);
            if (n > 0) {
              const len = f.readInt32BE(7);
              rows.push(len < 0 ? null : f.toString('utf8', 11, 11 + len));
            }
          } else if (type === BE.ErrorResponse) {
            const fields = decodeErrorFields(f);
            error = new ServerError(
              fields.get('M') ?? 'error',
              fields.get('C') ?? 'XX000',
              Buffer.from(f),
              fields.get('S'),
            );
          } else if (type === BE.ReadyForQuery) {
            this.txStatus = readyStatus(f);
            finish();
          } else if (type === BE.ParameterStatus) {
            const [k, v] = decodeParameterStatus(f);
            this.params.set(k, v);
          }
          return false;
        },
      };
      const onData = (chunk: Buffer) => {
        try {
          scanner.push(chunk, sink);
        } catch (e) {
          finish(e as Error);
        }
      };
      const onClose = () => finish(new ServerError('server closed the connection unexpectedly', '08006'));
      this.consumer = onData;
      sock.on('close', onClose);
      sock.write(encodeQuery(sql));
    });
  }

  private deliver(chunk: Buffer): void {
    const c = this.consumer;
    if (c) c(chunk);
    else this.reader?.onData(chunk);
  }

  /** Always true (keep reading): backpressure is the relays' business (they pause the socket). */
  private onRead(n: number, buf: Buffer): boolean {
    const r = this.consumer ? null : this.reader;
    this.deliver(buf.subarray(0, n));
    // Asked of the reader that got the chunk (it may have handed the server on meanwhile).
    this.freshBuf = r !== null && r.retainsChunk();
    return true;
  }

  private nextReadBuffer(): Buffer {
    if (this.freshBuf || this.readBuf === null) {
      this.readBuf = Buffer.allocUnsafeSlow(READ_SIZE);
      this.freshBuf = false;
    }
    return this.readBuf;
  }

  /** Close politely (Terminate) and destroy. Idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (!this.socket.destroyed && this.socket.writable) this.socket.end(TERMINATE);
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** SSLRequest → 'S' upgrades to TLS; 'N' continues in plain text unless TLS is required. */
function negotiateTls(raw: net.Socket, target: ServerTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    raw.once('data', (b: Buffer) => {
      if (b.length !== 1) return reject(new ServerError('invalid response to SSLRequest', '08P01'));
      if (b[0] === 0x4e) {
        if (target.sslmode === 'require')
          reject(new ServerError(`server ${target.node} does not support SSL`, '08006'));
        else resolve(raw);
        return;
      }
      if (b[0] !== 0x53) return reject(new ServerError('invalid response to SSLRequest', '08P01'));
      // Like libpq's sslmode=require: encrypted, certificate not verified.
      const s = tls.connect({
        socket: raw,
        rejectUnauthorized: false,
        servername: net.isIP(target.host) ? undefined : target.host,
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    raw.write(SSL_REQUEST);
  });
}
