// A TxMessages under test: real ResponsePlan and SessionParams, a fake relay that records what it would do.
import type { ServerConn } from '../../src/pool/server-conn.js';
import type { PinReason, SqlEffects } from '../../src/session/context.js';
import { ResponsePlan, Verdict } from '../../src/session/response-plan.js';
import { SessionParams } from '../../src/session/session-params.js';
import { TxMessages } from '../../src/session/tx-messages.js';
import type { TxOutput } from '../../src/session/tx-ports.js';

export const NONE: SqlEffects = { sets: [], resets: [], resetAll: false, pins: [] };
export const NO_TYPES = Buffer.from([0, 0]);
export const hex = (b: Buffer) => b.toString('hex');

/** One client: its TxMessages, and a fake relay attached to `server` that records what it would do. */
export function client(
  opts: { effects?: Record<string, Partial<SqlEffects>>; maxPrepared?: number; startup?: Record<string, string> } = {},
) {
  const params = new SessionParams(new Map(Object.entries(opts.startup ?? {})));
  const analyzed: string[] = [];
  const analyze = (sql: string): SqlEffects => {
    analyzed.push(sql);
    return { ...NONE, ...opts.effects?.[sql] };
  };
  const route = { intercept: () => null, deferredTxn: false, applySetting: () => {}, ownAnswer: () => null };
  const m = new TxMessages({ analyze }, route, params, opts.maxPrepared ?? 100);
  const sent: Buffer[] = [];
  const emitted: Buffer[] = [];
  const pins: string[] = [];
  const plan = new ResponsePlan({ emit: (b) => emitted.push(b), settled: (tag, ok) => m.settled(tag, ok) });
  const out: TxOutput & { server: ServerConn; pinned: boolean } = {
    send: (b) => sent.push(b),
    plan,
    server: {} as ServerConn,
    pin: (reason: PinReason) => pins.push(reason),
    pinned: false,
  };
  /** A client frame; returns handle's verdict (true = the relay forwards it unchanged). */
  const feed = (f: Buffer): boolean => m.handle(f[0], f, out);
  /** A server reply, handled as the relay does; returns whether the client sees it. */
  const reply = (type: number): boolean => {
    const v = plan.onServerFrame(type);
    if (v === Verdict.Drop) {
      plan.drainSynthetic();
      return false;
    }
    if (plan.syntheticDue) plan.drainSynthetic();
    return true;
  };
  return { m, params, out, sent, emitted, pins, plan, feed, reply, analyzed };
}
