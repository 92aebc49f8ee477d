// The login's conversation with the client: its messages framed and queued for the auth exchange, pgnear's
// replies batched per round trip.
import type net from 'node:net';
import { ProtocolError } from '../protocol/errors.js';
import { FrameScanner, type FrameSink, WATCH_ALL } from '../protocol/framer.js';
import type { AuthIO } from './client-auth.js';

const MAX_QUEUED_AUTH_FRAMES = 8;

/**
 * Replies are corked until pgnear next waits for the client or the login ends, so SASLFinal, AuthenticationOk, the
 * ParameterStatus set, BackendKeyData and ReadyForQuery leave in one write: a syscall and a client wake-up each
 * otherwise. Dropped once the session is active (memory per idle client).
 */
export class LoginIo implements AuthIO, FrameSink {
  private readonly inbox: Buffer[] = [];
  private waiter: ((f: Buffer) => void) | null = null;
  private readonly scanner = new FrameScanner(WATCH_ALL, 65_536);
  private corked = false;

  constructor(private readonly socket: net.Socket) {}

  /** Bytes from the client during login. Throws ProtocolError on bad framing or too many messages. */
  push(chunk: Buffer): void {
    this.scanner.push(chunk, this);
  }

  passthrough(): void {}

  frame(_type: number, f: Buffer): boolean {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w(f);
    } else {
      if (this.inbox.length >= MAX_QUEUED_AUTH_FRAMES)
        throw new ProtocolError('too many messages before login completed');
      this.inbox.push(f);
    }
    return false;
  }

  send(b: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    this.socket.write(b);
  }

  /** The client's next message; what pgnear sent so far leaves first. */
  recv(): Promise<Buffer> {
    this.flush();
    const f = this.inbox.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  flush(): void {
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }

  /** The login ended: replies leave; messages the client pipelined behind it go to the relay. */
  finish(): Buffer[] {
    this.flush();
    return this.inbox.splice(0);
  }

  /** The session closed mid-login: the pending recv never resolves (the login re-checks the session state). */
  abandon(): void {
    this.waiter = null;
  }
}
