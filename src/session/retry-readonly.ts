// The 25006 safety net: a request routed to a replica as a read that turns out to write is redone on the
// primary, when the replica's refusal came before anything reached the client.
import { BE } from '../protocol/codes.js';

export const RetryVerdict = { Pass: 0, Hold: 1, Swallow: 2 } as const;
export type RetryVerdict = (typeof RetryVerdict)[keyof typeof RetryVerdict];

/**
 * Replies that come before a statement runs (the extended protocol's Parse, Bind and Describe answers, a simple
 * query's RowDescription): a function that writes fails only when the statement runs, after them.
 */
const HOLDABLE = new Uint8Array(256);
for (const t of [BE.ParseComplete, BE.BindComplete, BE.ParameterDescription, BE.RowDescription, BE.NoData]) {
  HOLDABLE[t] = 1;
}

export class ReadOnlyRetry {
  /** The request's messages while a retry is still possible (nothing forwarded yet). */
  private batch: Buffer[] | null = null;
  /** Replies held back (copies), and pgnear's own replies among them, in order: they reach the client only once
   * the statement ran without 25006. */
  private held: Buffer[] | null = null;
  /** The replica refused: its replies are swallowed up to ReadyForQuery, then the request is redone. */
  active = false;

  arm(batch: readonly Buffer[] | null): void {
    this.batch = batch ? batch.slice() : null;
    this.held = null;
    this.active = false;
  }

  get armed(): boolean {
    return this.batch !== null;
  }

  /** Judge a watched server frame of an armed request; `code` is the SQLSTATE of an ErrorResponse. */
  onFrame(type: number, code: string | undefined): RetryVerdict {
    if (this.active) return RetryVerdict.Swallow;
    if (type === BE.ErrorResponse && code === '25006') {
      this.active = true;
      this.held = null;
      return RetryVerdict.Swallow;
    }
    return HOLDABLE[type] ? RetryVerdict.Hold : RetryVerdict.Pass; // on Pass the caller forwards what is held
  }

  /** Keep a reply (or pgnear's own) for later; copied, as the read buffer it sits in may be reused. */
  hold(b: Buffer): void {
    (this.held ??= []).push(Buffer.from(b));
  }

  /** Something else is being forwarded: no retry any more; returns the held replies to write first. */
  disarm(): Buffer | null {
    const h = this.held;
    this.batch = null;
    this.held = null;
    return h === null ? null : h.length === 1 ? h[0] : Buffer.concat(h);
  }

  /** The request to redo on the primary (after the swallowed ReadyForQuery). */
  take(): Buffer[] {
    const b = this.batch ?? [];
    this.arm(null);
    return b;
  }
}
