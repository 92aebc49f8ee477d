// Client messages held while the client has no server: until its request is complete and routed, or while
// its server finishes the previous request. Bounded in messages and bytes.
import { ProtocolError } from '../protocol/errors.js';
import { REQUEST_END } from '../protocol/frontend.js';

const MAX_MESSAGES = 10_000;
const MAX_BYTES = 64 * 1024 * 1024;
/** A request this long is routed before it ends (its rest streams to the server): see `long`. */
const LONG_MESSAGES = 1_000;
const LONG_BYTES = 1024 * 1024;

export class RequestQueue {
  private frames: Buffer[] = [];
  private bytes = 0;
  /** Replayed frames being forwarded: the first of a run of frames back to back in one client chunk, and its end. */
  private runFirst: Buffer | null = null;
  private runEnd = 0;

  get length(): number {
    return this.frames.length;
  }

  /** The held messages, oldest first (read-only view for routing). */
  get items(): readonly Buffer[] {
    return this.frames;
  }

  /** One message is always taken (the framer bounds its size by max_message_size); the sum is bounded too. */
  push(f: Buffer): void {
    if (this.frames.length > 0 && (this.frames.length >= MAX_MESSAGES || this.bytes + f.length > MAX_BYTES)) {
      throw new ProtocolError('too many messages while waiting for a server connection');
    }
    this.bytes += f.length;
    this.frames.push(f);
  }

  /** Long enough to route on what has arrived rather than wait for the request's end. */
  get long(): boolean {
    return this.frames.length >= LONG_MESSAGES || this.bytes >= LONG_BYTES;
  }

  /** Remove and return the first n messages. */
  take(n: number): Buffer[] {
    const out = this.frames.splice(0, n);
    for (const f of out) this.bytes -= f.length;
    return out;
  }

  /** Put messages back in front (a request redone on another server). */
  unshift(frames: readonly Buffer[]): void {
    for (const f of frames) this.bytes += f.length;
    this.frames = frames.concat(this.frames);
  }

  /** Does it hold a complete request (Query, Sync, Flush or FunctionCall)? */
  hasRequest(): boolean {
    return this.frames.some((f) => REQUEST_END[f[0]]);
  }

  /** Drop leading messages for as long as `consume` handles them. */
  consumeWhile(consume: (f: Buffer) => boolean): void {
    let i = 0;
    while (i < this.frames.length && consume(this.frames[i])) i++;
    if (i) this.take(i);
  }

  /**
   * A replayed frame goes to the server: frames that sit back to back in one client chunk (a pipelined Parse, Bind,
   * Describe, Execute, Sync) leave as one write rather than one Writable entry each. Returns the run f does not
   * continue, to be written first (else null); runOut() returns what is left.
   */
  runAdd(f: Buffer): Buffer | null {
    const first = this.runFirst;
    if (first && first.buffer === f.buffer && this.runEnd === f.byteOffset) {
      this.runEnd += f.length;
      return null;
    }
    const out = this.runOut();
    this.runFirst = f;
    this.runEnd = f.byteOffset + f.length;
    return out;
  }

  runOut(): Buffer | null {
    const first = this.runFirst;
    if (!first) return null;
    this.runFirst = null;
    const len = this.runEnd - first.byteOffset;
    return len === first.length ? first : Buffer.from(first.buffer, first.byteOffset, len);
  }
}
