// The transaction relay's server side: the scanner that frames a server's stream (one per server connection) and
// the sink that judges each reply (settings, status, errors, the 25006 retry, the response plan).
import { decodeErrorFields, decodeParameterStatus, readyStatus, replaceInError } from '../protocol/backend.js';
import { BE } from '../protocol/codes.js';
import { FrameScanner, type FrameSink, watchTable } from '../protocol/framer.js';
import type { ServerConn } from '../pool/server-conn.js';
import { PLAN_WATCH, type ResponsePlan, Verdict } from './response-plan.js';
import { ReadOnlyRetry, RetryVerdict } from './retry-readonly.js';

// ParameterDescription: held with the other replies to Describe while a 25006 retry is possible.
const SERVER_WATCH = watchTable([...PLAN_WATCH, BE.ParameterStatus, BE.ParameterDescription]);
const SERVER_MAX_FRAME = 0x40000000;

/**
 * A server's byte stream is framed by a scanner that belongs to the server connection, not to each client (128 B
 * per idle client otherwise): a server goes back to its pool only at a message boundary, so the next client's relay
 * picks the scanner up in a clean state. Read only by the relay attached to that server.
 */
const scanners = new WeakMap<ServerConn, FrameScanner>();
function scannerOf(conn: ServerConn): FrameScanner {
  let s = scanners.get(conn);
  if (!s) scanners.set(conn, (s = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME, true)));
  return s;
}
/** Stands in while no server is attached: never fed (no server reads into a detached relay), so always clean. */
const DETACHED = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME, true);

/** What the sink needs of its relay (TxRelay). */
export interface ServerSide {
  readonly plan: ResponsePlan;
  /** The attached server. */
  readonly server: ServerConn;
  /** Bytes for the client; false = its socket is full. */
  emit(b: Buffer): boolean;
  /** A ReadyForQuery arrived, before the response plan counts it. */
  onReadyFrame(): void;
}

/** What the sink needs of the client's statements (TxMessages). */
export interface StatementsView {
  /** The server refused the prepared statement of the slot tagged `tag`: its result type changed. */
  stalePlan(tag: number): void;
  readonly statements: { nameOf(shared: string): string | undefined };
}

/** pgnear's shared statement name as Postgres quotes it in an error message. */
const SHARED_NAME = /"(pgnear_[\w-]{22})"/;

/** An object with methods rather than a literal with closures: memory per idle client. */
export class ServerSink implements FrameSink {
  readonly retry = new ReadOnlyRetry();
  /** The attached server's scanner; DETACHED, always at a boundary, otherwise. */
  scanner = DETACHED;
  /** A ReadyForQuery went by in the chunk being read. */
  readySeen = false;
  /** An ErrorResponse since the last ReadyForQuery, and whether the last ReadyForQuery followed one. */
  private errored = false;
  failedBeforeReady = false;
  sawFatal = false;

  constructor(
    private readonly r: ServerSide,
    private readonly messages: StatementsView,
  ) {}

  attach(conn: ServerConn): void {
    this.scanner = scannerOf(conn);
    this.sawFatal = false;
  }

  detach(): void {
    this.scanner = DETACHED;
  }

  passthrough(b: Buffer): void {
    if (this.retry.armed) this.writeHeld(); // a held RowDescription goes before these rows
    if (!this.r.emit(b)) this.r.server.socket.pause();
  }

  /** A whole watched server message. */
  frame(type: number, f: Buffer): boolean {
    if (type === BE.ParameterStatus) {
      const [k, v] = decodeParameterStatus(f);
      this.r.server.params.set(k, v);
      return true;
    }
    if (type === BE.ReadyForQuery) {
      this.r.server.txStatus = readyStatus(f);
      this.readySeen = true;
      this.failedBeforeReady = this.errored;
      this.errored = false;
      this.r.onReadyFrame();
    }
    let code: string | undefined;
    if (type === BE.ErrorResponse) {
      const fields = decodeErrorFields(f);
      f = this.clientNamed(f, fields.get('M'));
      const sev = fields.get('V');
      if (sev === 'FATAL' || sev === 'PANIC') this.sawFatal = true;
      this.errored = true;
      code = fields.get('C');
      // "cached plan must not change result type" (the routine name does not depend on lc_messages)
      if (code === '0A000' && fields.get('R') === 'RevalidateCachedQuery') this.messages.stalePlan(this.r.plan.headTag);
    }
    const plan = this.r.plan;
    if (this.retry.armed) {
      // Pass-through bytes before this frame (a ParameterDescription, rows behind a held RowDescription) reach
      // the client first; anything but a held frame reaching it ends the chance of a retry.
      this.scanner.flush();
      // A replica refused a write we took for a read, before anything reached the client: redo it on the primary.
      const rv = this.retry.armed ? this.retry.onFrame(type, code) : RetryVerdict.Pass;
      if (rv === RetryVerdict.Swallow) {
        plan.onServerFrame(type);
        return false;
      }
      if (rv === RetryVerdict.Hold) {
        if (plan.onServerFrame(type) !== Verdict.Drop) this.retry.hold(f);
        plan.drainSynthetic(); // pgnear's replies due now are held behind it (see TxRelay.emit)
        // Nothing more is owed (a Describe answered before a Flush): no statement ran, the client gets it all now.
        if (plan.pending === 0) this.writeHeld();
        return false;
      }
      this.writeHeld();
    }
    const verdict = plan.onServerFrame(type);
    if (verdict === Verdict.Drop) {
      this.scanner.flush();
      plan.drainSynthetic();
      return false;
    }
    if (plan.syntheticDue || type === BE.ErrorResponse) {
      // Errors are rare: always written on their own, so a renamed one (clientNamed) takes the original's place.
      this.scanner.flush();
      this.r.emit(f);
      plan.drainSynthetic();
      return false;
    }
    return true;
  }

  /** An error naming pgnear's shared statement names the client's instead (bind message supplies 2 parameters…). */
  private clientNamed(f: Buffer, message: string | undefined): Buffer {
    const m = message === undefined ? null : SHARED_NAME.exec(message);
    const name = m ? this.messages.statements.nameOf(m[1]) : undefined;
    return name === undefined ? f : replaceInError(f, `"${m![1]}"`, `"${name}"`);
  }

  /** Write what the retry held, and give up the retry. */
  writeHeld(): void {
    const held = this.retry.disarm();
    if (held) this.r.emit(held);
  }
}
