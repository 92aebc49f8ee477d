// Accepts client TCP connections, enforces the raw socket cap, and drains sessions on shutdown.
import net from 'node:net';
import { encodeError } from '../protocol/backend.js';
import { SQLSTATE } from '../protocol/codes.js';
import { ClientSession } from './client-session.js';
import type { SessionContext } from './context.js';

export class Listener {
  private readonly server: net.Server;
  readonly sessions = new Set<ClientSession>();
  private closing = false;

  constructor(
    private readonly ctx: SessionContext,
    /** Sockets beyond this are refused before startup (max_client_conn is enforced politely after it). */
    private readonly hardLimit: number,
  ) {
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (sock) => this.accept(sock));
    this.server.on('error', (e) => ctx.log.error({ err: e.message }, 'listener error'));
  }

  private accept(sock: net.Socket): void {
    if (this.closing || this.sessions.size >= this.hardLimit) {
      sock.on('error', () => {});
      sock.end(
        encodeError({
          severity: 'FATAL',
          code: this.closing ? SQLSTATE.CannotConnectNow : SQLSTATE.TooManyConnections,
          message: this.closing ? 'the database system is shutting down' : 'sorry, too many clients already',
        }),
      );
      return;
    }
    this.sessions.add(new ClientSession(sock, this.ctx, this.forget));
  }

  /** One function for every session (a once-listener per socket costs memory per idle client). */
  private readonly forget = (s: ClientSession): void => {
    this.sessions.delete(s);
  };

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, backlog: 4096 }, () => {
        this.server.off('error', reject);
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /**
   * Stop accepting; idle sessions get 57P01 now, sessions in a transaction once it ends (the relay
   * checks at each ReadyForQuery), and whatever is left after the grace period is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    this.server.close();
    const terminate = {
      severity: 'FATAL' as const,
      code: SQLSTATE.AdminShutdown,
      message: 'terminating connection due to administrator command',
    };
    for (const s of this.sessions) if (s.idle()) s.fatal(terminate);
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      for (const s of this.sessions) if (s.idle()) s.fatal(terminate);
    }
    for (const s of this.sessions) s.fatal(terminate, 'shutdown grace period over');
  }
}
