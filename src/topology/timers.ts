// Timers owned by a topology source: bounded waits that all settle (and vanish) when the owner stops.

export const TIMEOUT = Symbol('timeout');

export class Timers {
  /** Pending timers, each with what to do instead when cancelAll() runs (settle a waiting promise). */
  readonly #pending = new Map<NodeJS.Timeout, () => void>();
  #cancelled = false;

  get size(): number {
    return this.#pending.size;
  }

  /** Clears every timer, settles what waits on them, and refuses new ones. */
  cancelAll(): void {
    this.#cancelled = true;
    const all = [...this.#pending];
    this.#pending.clear();
    for (const [t, onCancel] of all) {
      clearTimeout(t);
      onCancel();
    }
  }

  /** Runs fn after ms, unless cancelled (then onCancel runs instead, now). */
  after(fn: () => void, ms: number, onCancel: () => void = () => {}): NodeJS.Timeout | null {
    if (this.#cancelled) {
      onCancel();
      return null;
    }
    const t = setTimeout(() => {
      this.#pending.delete(t);
      fn();
    }, ms);
    this.#pending.set(t, onCancel);
    return t;
  }

  clear(t: NodeJS.Timeout | null): void {
    if (!t) return;
    clearTimeout(t);
    this.#pending.delete(t);
  }

  /** p, or a rejection after ms (onTimeout runs first); rejects at once when cancelled. */
  bounded<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.after(
        () => {
          onTimeout();
          reject(new Error(`timed out after ${ms} ms`));
        },
        ms,
        () => reject(new Error('topology source stopped')),
      );
      p.then(
        (v) => {
          this.clear(t);
          resolve(v);
        },
        (err: unknown) => {
          this.clear(t);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** p's value, or TIMEOUT after ms (or when cancelled). */
  within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
    return new Promise((resolve) => {
      const timeout = () => resolve(TIMEOUT);
      const t = this.after(timeout, ms, timeout);
      void p.then((v) => {
        this.clear(t);
        resolve(v);
      });
    });
  }
}
