// A token that abandons a queued acquire.

/**
 * Cancels an acquire still waiting for a server (its client left); one per session, reused by its acquires (at
 * most one is in flight, and a cancelled session acquires no more). A plain object: an AbortController and its
 * EventTarget listener cost about a microsecond per queued transaction.
 */
export class AcquireCancel {
  cancelled = false;
  /** Set by the pool while the acquire waits. */
  hook: (() => void) | null = null;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const h = this.hook;
    this.hook = null;
    h?.();
  }
}
