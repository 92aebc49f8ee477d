// Micro-benchmarks of NodePool checkout/return on a warm pool, with socket-free ServerConn stand-ins.
import { EventEmitter } from 'node:events';
import type { ServerCredentials } from '../../src/pool/credentials.js';
import { AcquireCancel, NodePool } from '../../src/pool/node-pool.js';
import { type Connector, resolveLimits } from '../../src/pool/pool-set.js';
import type { ServerConn } from '../../src/pool/server-conn.js';
import type { MicroCase } from './types.js';

const CREDS: ServerCredentials = { kind: 'password', password: 'bench' };
const KEEP = { reusable: true, reset: false } as const; // transaction mode's release

/** Just what the pool touches: closed, txStatus, createdAt, lastUsedAt, socket.destroyed / on / off / once, close(). */
function fakeConn(): ServerConn {
  // A real EventEmitter, as net.Socket is one: the pool adds and removes a 'data' listener on every idle <-> active
  // move, and that cost belongs in the measurement.
  const socket = Object.assign(new EventEmitter(), { destroyed: false });
  const conn = {
    id: 0,
    txStatus: 'I',
    createdAt: Date.now(),
    lastUsedAt: Date.now(),
    closed: false,
    closeReason: '',
    socket,
    query: () => Promise.resolve([]),
    close(reason: string) {
      conn.closed = true;
      conn.closeReason = reason;
      socket.destroyed = true;
      socket.emit('close');
    },
  };
  return conn as unknown as ServerConn;
}

async function warmPool(size: number): Promise<NodePool> {
  const connect: Connector = () => Promise.resolve(fakeConn());
  const pool = new NodePool({
    target: { node: 'bench', host: '127.0.0.1', port: 5432, sslmode: 'disable' },
    key: { user: 'bench', database: 'bench', startup: [] },
    // The pools sit unused while other cases run (tens of seconds): keep server_check_delay (30 s) from making the
    // next checkout a probe, so every case measures the plain hand-over.
    limits: resolveLimits({ poolSize: size, checkDelayMs: 3_600_000 }),
    connect,
    onError: (m) => {
      throw new Error(`pool error during benchmark: ${m}`);
    },
  });
  // Open every server once, then give them all back: `size` idle servers, nothing queued.
  const conns = await Promise.all(Array.from({ length: size }, () => pool.acquire(CREDS)));
  for (const c of conns) await pool.release(c, KEEP);
  return pool;
}

/** After the runs the pool must be back where it started: every server idle, none opened or closed on the way. */
function settled(pool: NodePool, size: number, name: string): () => void {
  return () => {
    const s = pool.stats();
    if (s.idle !== size || s.total !== size || s.waiting !== 0) {
      throw new Error(`${name}: pool not back to ${size} idle: ${JSON.stringify(s)}`);
    }
  };
}

export async function poolCases(): Promise<MicroCase[]> {
  const cases: MicroCase[] = [];
  const c = (name: string, fn: () => unknown, extra: Partial<MicroCase> = {}) =>
    cases.push({ group: 'pool', name, fn, ...extra });

  // Floor for the async cases: one awaited already-resolved promise (two microtask hops in an async function).
  const resolved = Promise.resolve(0);
  c('baseline: async fn awaiting a resolved promise', async () => await resolved);

  const one = await warmPool(4);
  c(
    'acquire + release (awaited), pool 4, 4 idle',
    async () => {
      const conn = await one.acquire(CREDS);
      await one.release(conn, KEEP);
    },
    { check: settled(one, 4, 'acquire + release') },
  );

  // Client sessions pass an AbortSignal; served at once, the acquire should not touch it (no listener, no timer).
  const oneSig = await warmPool(4);
  const ac = new AcquireCancel();
  c(
    'acquire(cancel) + release (awaited), pool 4, 4 idle',
    async () => {
      const conn = await oneSig.acquire(CREDS, ac);
      await oneSig.release(conn, KEEP);
    },
    { check: settled(oneSig, 4, 'acquire(cancel) + release') },
  );

  // 16 acquirers over 4 servers: 4 are served at once, 12 queue (timer armed) and get servers as they are released.
  const contended = await warmPool(4);
  const worker = async () => {
    const conn = await contended.acquire(CREDS);
    await contended.release(conn, KEEP);
  };
  c('16 concurrent acquire + release, pool 4 (queueing)', () => Promise.all(Array.from({ length: 16 }, worker)), {
    units: 16,
    unit: 'checkout',
    check: settled(contended, 4, '16 concurrent'),
  });

  // With a cancel token per acquirer, as transaction-mode sessions pass them: a queued acquire sets and clears its hook.
  const withSignal = await warmPool(4);
  const signals = Array.from({ length: 16 }, () => new AcquireCancel());
  const signalWorker = async (_: unknown, i: number) => {
    const conn = await withSignal.acquire(CREDS, signals[i]);
    await withSignal.release(conn, KEEP);
  };
  c('16 concurrent acquire(cancel) + release, pool 4', () => Promise.all(Array.from({ length: 16 }, signalWorker)), {
    units: 16,
    unit: 'checkout',
    check: settled(withSignal, 4, '16 concurrent, signal'),
  });

  // The synchronous fast path, when this NodePool has it (feature-detected: it may not exist in every revision).
  const sync = await warmPool(4);
  const trySync = (sync as unknown as { tryAcquire?: () => ServerConn | null }).tryAcquire;
  if (typeof trySync === 'function') {
    c(
      'tryAcquire + release (not awaited: sync with reset false)',
      () => {
        const conn = trySync.call(sync);
        if (conn === null) throw new Error('tryAcquire returned null on a warm pool');
        // release() is async but finishes synchronously without a reset; its promise is not worth awaiting here.
        void sync.release(conn, KEEP);
        return conn;
      },
      { check: settled(sync, 4, 'tryAcquire') },
    );
  } else {
    // Keep the table shape stable across revisions: listed, not measured.
    cases.push({ group: 'pool', name: 'tryAcquire + release', fn: () => 0, skip: 'NodePool has no tryAcquire()' });
  }
  return cases;
}
