// Replies a server still owes for forwarded client messages, so pgnear can hide replies to its own injected
// messages and slot its own replies (ParseComplete, CloseComplete, errors) into the right place.
import { BE } from '../protocol/codes.js';

/** What a slot stands for. */
export const Slot = {
  /** One extended-protocol message (Parse, Bind, Describe, Execute, Close): ends at its terminal reply. */
  Ext: 0,
  /** Query, Sync or FunctionCall: ends at ReadyForQuery and ends any error state. */
  Sync: 1,
  /** Injected by pgnear: its success reply is dropped; an error is still shown (it is the client's error). */
  Hidden: 2,
  /** No server message: pgnear's own reply, emitted when every earlier reply has been forwarded (tag settled ok),
   * or dropped with the extended messages the server skips after an error (tag settled not ok). */
  Synthetic: 3,
  /** A simple query injected by pgnear (a deferred BEGIN): its replies up to ReadyForQuery are dropped, errors aside. */
  HiddenSync: 4,
} as const;
export type Slot = (typeof Slot)[keyof typeof Slot];

/** Terminal replies of extended messages: ParseComplete, BindComplete, CloseComplete, NoData, RowDescription
 * (Describe), CommandComplete, EmptyQueryResponse, PortalSuspended (Execute). */
const TERMINAL = new Uint8Array(256);
for (const t of [
  BE.ParseComplete,
  BE.BindComplete,
  BE.CloseComplete,
  BE.NoData,
  BE.RowDescription,
  BE.CommandComplete,
  BE.EmptyQueryResponse,
  BE.PortalSuspended,
])
  TERMINAL[t] = 1;

/** Server message types the plan must see. */
export const PLAN_WATCH: readonly number[] = [...Array(256).keys()]
  .filter((t) => TERMINAL[t])
  .concat([BE.ErrorResponse, BE.ReadyForQuery]);

/** Action for a server frame. */
export const Verdict = { Forward: 0, Drop: 1 } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface PlanOutput {
  /** Emit pgnear's own bytes to the client at this point of the stream. */
  emit(bytes: Buffer): void;
  /** A tagged slot got its reply (ok) or failed / was skipped after an error (not ok). */
  settled(tag: number, ok: boolean): void;
}

/**
 * A growable ring of slots (no Array#shift on the hot path). Each slot: kind, optional synthetic bytes,
 * optional tag (caller's id for failure callbacks, e.g. a statement to forget when its Parse fails).
 */
export class ResponsePlan {
  /**
   * Slots interleaved in one plain array (kind, tag, synthetic bytes), `cap` slots, a power of two: one small
   * array per client rather than two typed arrays and an array (~350 B per idle client). Grows by doubling.
   */
  private ring: (number | Buffer | null)[] = [0, 0, null, 0, 0, null, 0, 0, null, 0, 0, null];
  private cap = 4;
  private head = 0;
  private len = 0;
  /** The server is discarding extended messages until the next Sync (after an error). */
  private serverSkipping = false;

  constructor(private readonly out: PlanOutput) {}

  get pending(): number {
    return this.len;
  }

  /** Does the server owe replies to a Sync, Query or FunctionCall? */
  get awaitingReady(): boolean {
    for (let i = 0; i < this.len; i++) if (this.kindAt((this.head + i) & (this.cap - 1)) === Slot.Sync) return true;
    return false;
  }

  /** Record a message sent to the server (or, for Synthetic, pgnear's own reply). */
  push(kind: Slot, tag = 0, synthetic: Buffer | null = null): void {
    if (kind === Slot.Sync || kind === Slot.HiddenSync) this.serverSkipping = false;
    else if (this.serverSkipping) {
      // The server ignores it, so it gets no reply of any kind.
      if (tag) this.out.settled(tag, false);
      return;
    }
    if (kind === Slot.Synthetic && this.len === 0) {
      this.out.emit(synthetic!);
      if (tag) this.out.settled(tag, true);
      return;
    }
    if (this.len === this.cap) this.grow();
    const i = 3 * ((this.head + this.len) & (this.cap - 1));
    this.ring[i] = kind;
    this.ring[i + 1] = tag;
    this.ring[i + 2] = synthetic;
    this.len++;
  }

  /** Judge one watched server frame; emits synthetic replies that become due after it. */
  onServerFrame(type: number): Verdict {
    if (this.len === 0) return Verdict.Forward; // e.g. an async error while idle
    const kind = this.kindAt(this.head);
    if (kind === Slot.HiddenSync) {
      if (type === BE.ReadyForQuery) this.pop();
      return type === BE.ErrorResponse ? Verdict.Forward : Verdict.Drop;
    }
    if (type === BE.ReadyForQuery) {
      // Extended slots still queued before the Sync got no reply (error mode): drop them.
      while (this.len > 0 && this.kindAt(this.head) !== Slot.Sync) this.popFailed();
      if (this.len > 0) this.pop();
      return Verdict.Forward;
    }
    if (kind === Slot.Sync) return Verdict.Forward; // everything inside a simple query's reply
    if (type === BE.ErrorResponse) {
      this.popFailed();
      // The server now skips to the next Sync: queued extended slots get nothing.
      while (this.len > 0 && this.kindAt(this.head) !== Slot.Sync) this.popFailed();
      if (this.len === 0) this.serverSkipping = true;
      return Verdict.Forward;
    }
    if (!TERMINAL[type]) return Verdict.Forward;
    const tag = this.tagAt(this.head);
    this.pop();
    if (tag) this.out.settled(tag, true);
    return kind === Slot.Hidden ? Verdict.Drop : Verdict.Forward;
  }

  /** Tag of the slot the next reply answers (0: none). */
  get headTag(): number {
    return this.len > 0 ? this.tagAt(this.head) : 0;
  }

  /** A synthetic reply is due: forward the current frame first, then call drainSynthetic. */
  get syntheticDue(): boolean {
    return this.len > 0 && this.kindAt(this.head) === Slot.Synthetic;
  }

  /** Emit synthetic replies now at the head (call after forwarding the frame that completed a slot). */
  drainSynthetic(): void {
    while (this.len > 0 && this.kindAt(this.head) === Slot.Synthetic) {
      const b = this.ring[3 * this.head + 2] as Buffer;
      const tag = this.tagAt(this.head);
      this.pop();
      this.out.emit(b);
      if (tag) this.out.settled(tag, true);
    }
  }

  /** Forget everything (server gone or session closing). */
  clear(): void {
    while (this.len > 0) this.popFailed();
    this.serverSkipping = false;
  }

  private popFailed(): void {
    const tag = this.tagAt(this.head);
    this.pop();
    if (tag) this.out.settled(tag, false);
  }

  private kindAt(slot: number): Slot {
    return this.ring[3 * slot] as Slot;
  }

  private tagAt(slot: number): number {
    return this.ring[3 * slot + 1] as number;
  }

  private pop(): void {
    this.ring[3 * this.head + 2] = null;
    this.head = (this.head + 1) & (this.cap - 1);
    this.len--;
  }

  private grow(): void {
    const ring: (number | Buffer | null)[] = [];
    for (let i = 0; i < this.len; i++) {
      const j = 3 * ((this.head + i) & (this.cap - 1));
      ring.push(this.ring[j], this.ring[j + 1], this.ring[j + 2]);
    }
    for (let i = this.len; i < 2 * this.cap; i++) ring.push(0, 0, null);
    this.ring = ring;
    this.cap *= 2;
    this.head = 0;
  }
}
