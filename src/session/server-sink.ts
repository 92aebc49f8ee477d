// The transaction relay's server side: the scanner that frames a server's stream (one per server connection) and
// its FrameSink (the relay itself is the client scanner's).
import { BE } from '../protocol/codes.js';
import { FrameScanner, type FrameSink, watchTable } from '../protocol/framer.js';
import type { ServerConn } from '../pool/server-conn.js';
import { PLAN_WATCH } from './response-plan.js';

const SERVER_WATCH = watchTable([...PLAN_WATCH, BE.ParameterStatus]);
const SERVER_MAX_FRAME = 0x40000000;

/**
 * A server's byte stream is framed by a scanner that belongs to the server connection, not to each client (128 B
 * per idle client otherwise): a server goes back to its pool only at a message boundary, so the next client's relay
 * picks the scanner up in a clean state. Read only by the relay attached to that server.
 */
const scanners = new WeakMap<ServerConn, FrameScanner>();
export function scannerOf(conn: ServerConn): FrameScanner {
  let s = scanners.get(conn);
  if (!s) scanners.set(conn, (s = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME, true)));
  return s;
}
/** Stands in while no server is attached: never fed (no server reads into a detached relay), so always clean. */
export const DETACHED = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME, true);

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
