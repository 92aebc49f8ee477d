// The transaction relay's server side as the server scanner's FrameSink (the relay itself is the client's).
import type { FrameSink } from '../protocol/framer.js';

/** What the sink forwards to (TxRelay). */
export interface ServerSide {
  serverPassthrough(b: Buffer): void;
  onServerFrame(type: number, f: Buffer): boolean;
}

/** An object with methods rather than a literal with closures: memory per idle client. */
export class ServerSink implements FrameSink {
  constructor(private readonly r: ServerSide) {}

  passthrough(b: Buffer): void {
    this.r.serverPassthrough(b);
  }

  frame(type: number, f: Buffer): boolean {
    return this.r.onServerFrame(type, f);
  }
}
