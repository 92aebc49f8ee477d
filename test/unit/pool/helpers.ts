// Socket-free fakes for pool tests: ServerConn look-alikes and a controllable connector.
import { EventEmitter } from 'node:events';
import { vi } from 'vitest';
import { NodePool } from '../../../src/pool/node-pool.js';
import { resolveLimits, type Connector, type PoolLimits } from '../../../src/pool/pool-set.js';
import type { ServerConn, ServerReader, ServerTarget } from '../../../src/pool/server-conn.js';
import type { ServerCredentials } from '../../../src/pool/credentials.js';

export const target: ServerTarget = { node: 'n1', host: '127.0.0.1', port: 5432, sslmode: 'disable' };
export const creds: ServerCredentials = { kind: 'password', password: 'secret' };

export class FakeSocket extends EventEmitter {
  destroyed = false;
  writable = true;
  end(): void {
    this.destroy();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.writable = false;
    this.emit('close');
  }
}

let nextId = 1;

export interface FakeConn extends ServerConn {
  socket: FakeSocket & ServerConn['socket'];
  queries: string[];
  /** Answer to the next internal queries; default resolves []. */
  onQuery: (sql: string) => Promise<(string | null)[]>;
}

export function fakeConn(): FakeConn {
  const socket = new FakeSocket();
  const conn = {
    id: nextId++,
    target,
    socket,
    params: new Map<string, string>(),
    pid: 0,
    secret: 0,
    txStatus: 'I',
    createdAt: Date.now(),
    lastUsedAt: Date.now(),
    closed: false,
    closeReason: '',
    reader: null as ServerReader | null,
    queries: [] as string[],
    onQuery: (_sql: string) => Promise.resolve([] as (string | null)[]),
    query(sql: string) {
      this.queries.push(sql);
      return this.onQuery(sql);
    },
    close(reason: string) {
      if (this.closed) return;
      this.closed = true;
      this.closeReason = reason;
      socket.destroy();
    },
  };
  // As ServerConn.connect does after login: one set of listeners dispatching to the current reader.
  socket.on('data', (c: Buffer) => conn.reader?.onData(c));
  socket.on('drain', () => conn.reader?.onDrain());
  socket.on('close', () => conn.reader?.onClose());
  return conn as unknown as FakeConn;
}

export interface PendingConnect {
  creds: ServerCredentials;
  resolve: (c: ServerConn) => void;
  reject: (e: Error) => void;
}

/** A NodePool with a fake connector: `auto` logins succeed at once, otherwise they wait in `pending`. */
export function harness(limits: Partial<PoolLimits> = {}, { auto = true } = {}) {
  const events: { event: string; id: number; reason: string }[] = [];
  const errors: string[] = [];
  const pending: PendingConnect[] = [];
  const conns: FakeConn[] = [];
  const connect = vi.fn<Connector>((_t, _s, c) => {
    if (auto) {
      const conn = fakeConn();
      conns.push(conn);
      return Promise.resolve(conn);
    }
    return new Promise<ServerConn>((resolve, reject) => pending.push({ creds: c, resolve, reject }));
  });
  const pool = new NodePool({
    target,
    key: {
      user: 'u',
      database: 'db',
      startup: [
        ['user', 'u'],
        ['database', 'db'],
      ],
    },
    limits: resolveLimits({ checkQuery: '', resetQuery: '', queryWaitTimeoutMs: 0, ...limits }),
    connect,
    onEvent: (event, conn, reason) => events.push({ event, id: conn.id, reason }),
    onError: (m) => errors.push(m),
  });
  /** Finish the oldest pending login with a new fake server. */
  const succeed = (i = 0): FakeConn => {
    const conn = fakeConn();
    conns.push(conn);
    pending.splice(i, 1)[0].resolve(conn);
    return conn;
  };
  /** Fail the oldest pending login. */
  const failLogin = (err: Error, i = 0): void => pending.splice(i, 1)[0].reject(err);
  return { pool, events, errors, pending, conns, connect, succeed, failLogin };
}

/** Let promise callbacks run (no timers involved). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Track a promise's outcome without awaiting it. */
export function track<T>(p: Promise<T>) {
  const s: { value?: T; error?: Error & { code?: string; sqlstate?: string }; done: boolean } = { done: false };
  p.then(
    (v) => Object.assign(s, { value: v, done: true }),
    (e: Error) => Object.assign(s, { error: e, done: true }),
  );
  return s;
}
