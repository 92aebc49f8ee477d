// Byte pump between one client and its server: forwards frames untouched, watches the few that matter, applies backpressure.
import type net from 'node:net';
import { decodeErrorFields, decodeParameterStatus, readyStatus } from '../protocol/backend.js';
import { BE, FE, type TxStatus } from '../protocol/codes.js';
import { FrameScanner, type FrameSink, watchTable } from '../protocol/framer.js';
import { CLIENT_WATCH, FRONTEND_TYPES } from '../protocol/frontend.js';
import type { ServerConn, ServerReader } from '../pool/server-conn.js';

/** Message types a frontend may send after startup. */
/** Server side: only what pgnear acts on; rows stream through as raw bytes. */
const SERVER_WATCH = watchTable([BE.ReadyForQuery, BE.ErrorResponse, BE.ParameterStatus]);

/** A server response sized above Postgres's own 1 GB limit is corrupt. */
const SERVER_MAX_FRAME = 0x40000000;

export interface RelayHooks {
  /** A ReadyForQuery was forwarded to the client. */
  onReady(status: TxStatus): void;
  /** The client sent Terminate. */
  onTerminate(): void;
  /** The server connection closed while attached; canReport: the client stream is at a message boundary and got no FATAL yet. */
  onServerGone(canReport: boolean): void;
  /** Protocol error on either side; the session must close. */
  onProtocolError(err: Error, fromClient: boolean): void;
}

/** Pumps one client and its server; reads the server as its ServerReader. */
export class Relay implements ServerReader {
  private readonly fromClientScanner: FrameScanner;
  private readonly fromServerScanner = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME, true);
  /** Requests (Query, Sync, FunctionCall) sent to the server whose ReadyForQuery has not come back. */
  pendingReplies = 0;
  /** Type of the last complete client message (0 = none yet). */
  private lastClientType = 0;
  private sawFatal = false;
  private readySeen = false;
  private detached = false;
  private readonly clientSink: FrameSink;
  private readonly serverSink: FrameSink;

  constructor(
    private readonly client: net.Socket,
    readonly server: ServerConn,
    maxMessage: number,
    private readonly hooks: RelayHooks,
  ) {
    this.fromClientScanner = new FrameScanner(CLIENT_WATCH, maxMessage, false, FRONTEND_TYPES);
    const srv = server.socket;
    this.clientSink = {
      passthrough: (b) => {
        if (!srv.write(b)) client.pause();
      },
      frame: (type) => this.onClientFrame(type),
    };
    this.serverSink = {
      passthrough: (b) => {
        if (!client.write(b)) srv.pause();
      },
      frame: (type, f) => this.onServerFrame(type, f),
    };
    server.reader = this;
  }

  /** Feed bytes the client sent. */
  fromClient(chunk: Buffer): void {
    try {
      this.fromClientScanner.push(chunk, this.clientSink);
    } catch (e) {
      this.hooks.onProtocolError(e as Error, true);
    }
  }

  /** True when the server sits idle outside a transaction with no request or partial message in flight. */
  reusable(): boolean {
    const t = this.lastClientType;
    return (
      this.pendingReplies === 0 &&
      (t === 0 || t === FE.Query || t === FE.Sync || t === FE.FunctionCall) &&
      this.server.txStatus === 'I' &&
      this.fromClientScanner.atBoundary() &&
      this.fromServerScanner.atBoundary()
    );
  }

  /** Stop pumping: the server may go back to a pool. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    if (this.server.reader === this) this.server.reader = null;
    this.server.socket.resume();
  }

  private onClientFrame(type: number): boolean {
    if (type === FE.Terminate) {
      // Not recorded as the last message: what came before it decides whether the server is reusable.
      this.hooks.onTerminate();
      return false;
    }
    this.lastClientType = type;
    if (type === FE.Query || type === FE.Sync || type === FE.FunctionCall) this.pendingReplies++;
    return true;
  }

  private onServerFrame(type: number, f: Buffer): boolean {
    if (type === BE.ReadyForQuery) {
      this.server.txStatus = readyStatus(f);
      if (this.pendingReplies > 0) this.pendingReplies--;
      // The hook runs once the chunk has been forwarded, so anything it writes follows the ReadyForQuery.
      this.readySeen = true;
      return true;
    }
    if (type === BE.ErrorResponse) {
      const sev = decodeErrorFields(f).get('V');
      if (sev === 'FATAL' || sev === 'PANIC') this.sawFatal = true;
    } else if (type === BE.ParameterStatus) {
      const [k, v] = decodeParameterStatus(f);
      this.server.params.set(k, v);
    }
    return true;
  }

  /** ServerReader: bytes from the server. */
  onData(chunk: Buffer): void {
    try {
      this.fromServerScanner.push(chunk, this.serverSink);
    } catch (e) {
      this.hooks.onProtocolError(e as Error, false);
      return;
    }
    if (this.readySeen) {
      this.readySeen = false;
      this.hooks.onReady(this.server.txStatus);
    }
  }

  onDrain(): void {
    this.client.resume();
  }

  retainsChunk(): boolean {
    return this.client.writableLength > 0;
  }

  /** The client's socket drained (its session's shared listener): resume the server held back for it. */
  clientDrained(): void {
    if (!this.detached) this.server.socket.resume();
  }

  onClose(): void {
    if (!this.detached) this.hooks.onServerGone(!this.sawFatal && this.fromServerScanner.atBoundary());
  }
}
