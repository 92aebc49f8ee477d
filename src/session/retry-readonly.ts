// The 25006 safety net: a request routed to a replica as a read that turns out to write is redone on the
// primary, when the replica's refusal came before anything reached the client.
import { BE } from '../protocol/codes.js';

export const RetryVerdict = { Pass: 0, Hold: 1, Swallow: 2 } as const;
export type RetryVerdict = (typeof RetryVerdict)[keyof typeof RetryVerdict];

export class ReadOnlyRetry {
  /** The request's messages while a retry is still possible (nothing forwarded yet). */
  private batch: Buffer[] | null = null;
  /**
   * A RowDescription held back: a simple query sends it before executing, so a function that writes fails
   * after it. It reaches the client only once the next reply shows there is no 25006.
   */
  held: Buffer | null = null;
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

  /**
   * Judge a watched server frame of an armed request; `code` is the SQLSTATE of an ErrorResponse. On Pass the
   * request stays armed until disarm(), so rows already pending behind a held RowDescription still find it.
   */
  onFrame(type: number, f: Buffer, code: string | undefined): RetryVerdict {
    if (this.active) return RetryVerdict.Swallow;
    if (type === BE.ErrorResponse && code === '25006') {
      this.active = true;
      this.held = null;
      return RetryVerdict.Swallow;
    }
    if (type === BE.RowDescription && this.held === null) {
      this.held = Buffer.from(f);
      return RetryVerdict.Hold;
    }
    return RetryVerdict.Pass; // the caller forwards what is held, then disarms
  }

  /** Something else is being forwarded: no retry any more; returns a held frame to write first. */
  disarm(): Buffer | null {
    const h = this.held;
    this.batch = null;
    this.held = null;
    return h;
  }

  /** The request to redo on the primary (after the swallowed ReadyForQuery). */
  take(): Buffer[] {
    const b = this.batch ?? [];
    this.arm(null);
    return b;
  }
}
