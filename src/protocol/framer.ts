// Incremental splitter of typed protocol messages by their 5-byte header; forwards bytes untouched.
import { ProtocolError } from './errors.js';

/** Receives what a FrameScanner finds in the byte stream. */
export interface FrameSink {
  /** Bytes to forward untouched, in stream order; may hold partial messages. */
  passthrough(bytes: Buffer): void;
  /**
   * One complete watched message (header + body); the buffer is never reused by the scanner.
   * Return true to forward it untouched (it joins the surrounding pass-through run, so no extra write),
   * false to drop it. To write something of its own before the drop, the sink first calls scanner.flush().
   */
  frame(type: number, frame: Buffer): boolean;
}

/** A 256-entry table: non-zero = deliver messages of that type via FrameSink.frame. */
export type WatchTable = Uint8Array;

export function watchTable(types: Iterable<number>): WatchTable {
  const t = new Uint8Array(256);
  for (const ty of types) t[ty] = 1;
  return t;
}

export const WATCH_ALL: WatchTable = new Uint8Array(256).fill(1);

/**
 * Messages of watched types are collected whole (copied only when they straddle chunks); every other
 * message streams through as subarrays of the incoming chunks, so a 1 GB DataRow costs no memory.
 */
export class FrameScanner {
  watch: WatchTable;
  readonly maxFrame: number;
  /** Bytes of the current pass-through message still to come. */
  private skip = 0;
  /**
   * Partially received header; allocated on first need, outside Buffer's shared 8 KB pool (a long-lived 5-byte
   * slice would keep a whole pool slab alive per idle connection).
   */
  private hdr: Buffer | null = null;
  private hdrHave = 0;
  /**
   * Watched message being collected across chunks: the received pieces, joined once complete. Memory follows
   * the bytes actually received, so a 5-byte header claiming 256 MB costs nothing until the bytes arrive.
   */
  private collect: Buffer[] | null = null;
  private collectTotal = 0;
  private collectHave = 0;
  /** Pending pass-through run of the chunk being scanned: [runStart, pos). */
  private chunk: Buffer | null = null;
  private runStart = -1;
  private pos = 0;
  private sink: FrameSink | null = null;

  /**
   * `reusedInput`: the caller reuses chunk memory once push() returns (a server read into a reused buffer), so a
   * watched message collected across chunks keeps copies of its pieces rather than views.
   */
  constructor(
    watch: WatchTable,
    maxFrame: number,
    private readonly reusedInput = false,
    /** Message types allowed at all (null: any); another is refused at its header, before its body is buffered. */
    private readonly valid: WatchTable | null = null,
  ) {
    this.watch = watch;
    this.maxFrame = maxFrame;
  }

  /** True when no partial message is pending: the next byte starts a message. */
  atBoundary(): boolean {
    return this.skip === 0 && this.hdrHave === 0 && this.collect === null;
  }

  /** Emit the pending pass-through run (bytes before the message being delivered). */
  flush(): void {
    if (this.runStart >= 0 && this.chunk && this.sink) {
      if (this.pos > this.runStart) this.sink.passthrough(this.chunk.subarray(this.runStart, this.pos));
      this.runStart = -1;
    }
  }

  /** Feed one chunk. Throws ProtocolError on an impossible length; the stream is then unusable. */
  push(chunk: Buffer, sink: FrameSink): void {
    this.chunk = chunk;
    this.sink = sink;
    this.runStart = -1;
    this.pos = 0;
    try {
      this.scan(chunk, sink);
      this.flush();
    } finally {
      this.chunk = null;
      this.sink = null;
    }
  }

  private scan(chunk: Buffer, sink: FrameSink): void {
    const len = chunk.length;
    while (this.pos < len) {
      const pos = this.pos;
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - pos);
        if (this.runStart < 0) this.runStart = pos;
        this.pos += n;
        this.skip -= n;
        continue;
      }
      if (this.collect !== null) {
        const n = Math.min(this.collectTotal - this.collectHave, len - pos);
        this.collectHave += n;
        // The piece that completes the message is joined at once; earlier ones outlive this chunk.
        this.collect.push(this.held(chunk.subarray(pos, pos + n), this.collectHave < this.collectTotal));
        this.pos += n;
        if (this.collectHave === this.collectTotal) {
          const c = Buffer.concat(this.collect, this.collectTotal);
          this.collect = null;
          this.deliverCopy(c, sink);
        }
        continue;
      }
      if (this.hdrHave > 0 || len - pos < 5) {
        // Header split across chunks: gather it in `hdr` first.
        this.flush();
        const n = Math.min(5 - this.hdrHave, len - pos);
        const hdr = (this.hdr ??= Buffer.alloc(5));
        chunk.copy(hdr, this.hdrHave, pos, pos + n);
        this.hdrHave += n;
        this.pos += n;
        if (this.hdrHave < 5) return;
        this.hdrHave = 0;
        const total = this.checkedTotal(hdr, 0);
        if (this.watch[hdr[0]]) {
          const h = Buffer.from(hdr);
          if (total === 5) this.deliverCopy(h, sink);
          else this.startCollect([h], total, 5);
        } else {
          sink.passthrough(Buffer.from(hdr));
          this.skip = total - 5;
        }
        continue;
      }
      const type = chunk[pos];
      const total = this.checkedTotal(chunk, pos);
      if (this.watch[type]) {
        if (pos + total <= len) {
          const keep = sink.frame(type, chunk.subarray(pos, pos + total));
          if (keep) {
            if (this.runStart < 0) this.runStart = pos;
          } else {
            this.flush();
          }
          this.pos = pos + total;
        } else {
          this.flush();
          this.startCollect([this.held(chunk.subarray(pos, len), true)], total, len - pos);
          this.pos = len;
        }
      } else {
        if (this.runStart < 0) this.runStart = pos;
        const n = Math.min(total, len - pos);
        this.pos += n;
        this.skip = total - n;
      }
    }
  }

  private held(piece: Buffer, outlivesChunk: boolean): Buffer {
    return this.reusedInput && outlivesChunk ? Buffer.from(piece) : piece;
  }

  private startCollect(parts: Buffer[], total: number, have: number): void {
    this.collect = parts;
    this.collectTotal = total;
    this.collectHave = have;
  }

  /** A watched message assembled in its own buffer: forward it by itself if the sink keeps it. */
  private deliverCopy(c: Buffer, sink: FrameSink): void {
    this.flush();
    if (sink.frame(c[0], c)) sink.passthrough(c);
  }

  private checkedTotal(buf: Buffer, at: number): number {
    if (this.valid !== null && !this.valid[buf[at]])
      throw new ProtocolError(`invalid frontend message type ${buf[at]}`);
    const bodyLen = buf.readUInt32BE(at + 1);
    if (bodyLen < 4) throw new ProtocolError(`invalid message length ${bodyLen}`);
    if (bodyLen > this.maxFrame) {
      throw new ProtocolError(`message of type "${String.fromCharCode(buf[at])}" is too large (${bodyLen} bytes)`);
    }
    return bodyLen + 1;
  }
}
