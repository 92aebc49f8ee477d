// pgnear's own BackendKeyData per client, mapped to the real server process so a cancel reaches only that client's query.
import { randomInt, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { encodeCancelRequest } from '../protocol/startup.js';
import type { ServerTarget } from '../pool/server-conn.js';

/** What a session exposes to the cancel path: the server currently running its query, if any. */
export interface Cancellable {
  cancelTarget(): { target: ServerTarget; pid: number; secret: number } | null;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, { secret: number; session: Cancellable }>();

  /** Allocate a unique (pid, secret) for a new client. */
  register(session: Cancellable): { pid: number; secret: number } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const secret = randomInt(-0x80000000, 0x7fffffff);
    this.byPid.set(pid, { secret, session });
    return { pid, secret };
  }

  unregister(pid: number): void {
    this.byPid.delete(pid);
  }

  /** The session the key belongs to, if the secret matches (compared in constant time). */
  find(pid: number, secret: number): Cancellable | null {
    const e = this.byPid.get(pid);
    if (!e) return null;
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(e.secret);
    b.writeInt32BE(secret);
    return timingSafeEqual(a, b) ? e.session : null;
  }

  get size(): number {
    return this.byPid.size;
  }
}

/** Send a CancelRequest to a server on a fresh connection, as Postgres expects. Never throws. */
export function sendCancel(target: ServerTarget, pid: number, secret: number, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: target.host, port: target.port });
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.on('connect', () => s.end(encodeCancelRequest(pid, secret)));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
