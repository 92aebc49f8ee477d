// Client messages in transaction mode: renames prepared statements to pgnear's shared names, answers what
// the server must not see, and notes session effects (SET, pins) of the SQL the client runs.
import { encodeError, type ErrorFields, encodeReady, RFQ_IDLE, RFQ_IN_TX } from '../protocol/backend.js';
import { FE, type TxStatus } from '../protocol/codes.js';
import {
  bindStatement,
  CLOSE_COMPLETE,
  decodeParse,
  decodeTarget,
  encodeParse,
  encodeTarget,
  KIND_STATEMENT,
  PARSE_COMPLETE,
  rewriteBindStatement,
} from '../protocol/extended.js';
import { decodeQuery } from '../protocol/frontend.js';
import type { SqlEffects } from './context.js';
import { type ResponsePlan, Slot } from './response-plan.js';
import { deallocateQuery, mayBeDeallocate } from './local-deallocate.js';
import { localAnswer, LocalStatements } from './local-statements.js';
import type { SqlAnalyzerHook, TxOutput, TxRouteHooks } from './tx-ports.js';
import type { SessionParams } from './session-params.js';
import { ownedCopy } from '../util/bytes.js';
import {
  type ClientStatement,
  ClientStatements,
  invalidatePlan,
  isKnownGood,
  markGood,
  planGeneration,
  type ServerStatements,
  serverStatements,
  sharedName,
} from './statements.js';

/** Postgres' own error for a statement whose result type changed since it was prepared (routine included). */
const STALE_PLAN: ErrorFields = {
  severity: 'ERROR',
  code: '0A000',
  message: 'cached plan must not change result type',
  routine: 'RevalidateCachedQuery',
};

const OWN_SETTING = /^\s*(?:set|reset)\s+(?:session\s+)?pgnear\./i;
const DISCARD_ALL = /^\s*discard\s+all\s*;?\s*$/i;
const DEALLOCATE_ALL = /^\s*deallocate\s+(prepare\s+)?all\s*;?\s*$/i;

interface ParseTag {
  name: string;
  shared: string;
  /** Where the Parse was sent; null for pgnear's own ParseComplete / CloseComplete (the server is not involved). */
  ss: ServerStatements | null;
  /** A Close pgnear answered: the statement to put back if the reply is dropped (the server skipped it). */
  restore?: ClientStatement;
  /** A Bind of the shared statement (tagged so a stale-plan error can name its statement). */
  bind?: true;
}

type Effects = SqlEffects & { readonly dropsStatements?: boolean; readonly ownSetting?: string };

export class TxMessages {
  readonly statements: ClientStatements;
  /** Effects of the unnamed statement, applied when it is bound. */
  private unnamedEffects: SqlEffects | null = null;
  /** pgnear answered a message with an error: drop messages until Sync, as the server would. */
  private localError = false;
  /** Replies pgnear must match to a Parse / Close by tag; created on first use (memory per idle client). */
  private tags: Map<number, ParseTag> | null = null;
  private nextTag = 1;
  /** An unnamed statement pgnear answers (DEALLOCATE, SHOW pgnear.*, EXPLAIN ROUTE); created on the first one. */
  private local: LocalStatements | null = null;

  constructor(
    private readonly analyzer: SqlAnalyzerHook,
    private readonly route: TxRouteHooks,
    private readonly params: SessionParams,
    private readonly maxPrepared: number,
    /** Validity of a statement is known per database (its schema): "known good" entries are kept per scope. */
    private readonly scope = '',
  ) {
    this.statements = new ClientStatements(maxPrepared);
  }

  /** Handle one client message for the attached server; true = forward it unchanged. */
  handle(type: number, f: Buffer, out: TxOutput): boolean {
    if (this.localError && type !== FE.Sync) return false;
    if (this.local !== null && this.local.handle(type, f, out.plan)) return false;
    switch (type) {
      case FE.Query: {
        const status = out.server.txStatus;
        if (this.intercepted(f, status, false, out.plan)) return false;
        const sql = decodeQuery(f);
        // With replies in flight the status for our ReadyForQuery is unknown: the server answers (26000) instead.
        if (
          out.plan.pending === 0 &&
          status !== 'E' &&
          deallocateQuery(sql, status, this.statements, out.pinned, out.plan)
        )
          return false;
        this.apply(this.effectsFor(sql), out);
        out.plan.push(Slot.Sync);
        return true;
      }
      case FE.Parse:
        return this.parse(f, out);
      case FE.Bind:
        return this.bind(f, out);
      case FE.Describe:
        return this.describe(f, out);
      case FE.Close:
        return this.close(f, out);
      case FE.Execute:
        out.plan.push(Slot.Ext);
        return true;
      case FE.Sync:
        this.localError = false;
        out.plan.push(Slot.Sync);
        return true;
      case FE.FunctionCall:
        out.plan.push(Slot.Sync);
        return true;
      default:
        return true; // Flush, CopyDone, CopyFail: no reply of their own
    }
  }

  /**
   * The client holds no server and nothing is in flight: answer what needs no server (a Parse of a statement
   * known to be valid, Close of a statement, Flush, Sync as ReadyForQuery 'I'). False: a server is needed.
   */
  handleIdle(type: number, f: Buffer, plan: ResponsePlan): boolean {
    if (this.localError && type !== FE.Sync) return true; // skipped, as the server would after an error
    if (plan.pending > 0) return false;
    if (this.local !== null && this.local.handle(type, f, plan)) return true;
    switch (type) {
      case FE.Query:
        if (this.intercepted(f, 'I', true, plan)) return true;
        if (!mayBeDeallocate(f)) return false; // the hot path: no decoding of every query here
        return deallocateQuery(decodeQuery(f), this.route.deferredTxn ? 'T' : 'I', this.statements, false, plan);
      case FE.Sync:
        this.localError = false;
        plan.push(Slot.Synthetic, 0, this.route.deferredTxn ? RFQ_IN_TX : RFQ_IDLE);
        return true;
      case FE.Flush:
        return true;
      case FE.Close: {
        const c = decodeTarget(f);
        if (c.kind !== KIND_STATEMENT || c.name === '') return false;
        this.statements.delete(c.name);
        plan.push(Slot.Synthetic, 0, CLOSE_COMPLETE);
        return true;
      }
      case FE.Parse: {
        const p = decodeParse(f);
        if (this.localParse(p.name, p.sql, false, this.route.deferredTxn ? 'T' : 'I', plan)) return true;
        if (p.name === '') return false;
        const shared = sharedName(p.sql, p.types);
        if (!isKnownGood(this.scope, shared)) return false;
        const effects = this.effectsFor(p.sql);
        if (effects.pins.length) return false; // pinning needs the server it will run on
        if (this.statements.has(p.name)) {
          this.fail(plan, '42P05', `prepared statement "${p.name}" already exists`);
          return true;
        }
        const gen = planGeneration(this.scope, shared);
        const st: ClientStatement = { shared, sql: p.sql, types: ownedCopy(p.types), effects, gen };
        if (!this.statements.add(p.name, st)) return false;
        plan.push(Slot.Synthetic, 0, PARSE_COMPLETE);
        return true;
      }
      default:
        return false;
    }
  }

  /** pgnear's own answer (SET/SHOW pgnear.*, EXPLAIN ROUTE) to a simple query, in its place in the stream. */
  private intercepted(f: Buffer, status: TxStatus, detached: boolean, plan: ResponsePlan): boolean {
    if (this.localError) return false;
    const r = this.route.intercept(f, status, detached);
    if (!r) return false;
    plan.push(Slot.Synthetic, 0, Buffer.concat([r.reply, encodeReady(r.status)]));
    return true;
  }

  /**
   * Parse of the unnamed statement: a DEALLOCATE of the client's own statement, SHOW pgnear.* and EXPLAIN ROUTE are
   * answered here from now on (drivers such as pgjdbc and psycopg 3 send every statement this way).
   */
  private localParse(name: string, sql: string, pinned: boolean, status: TxStatus, plan: ResponsePlan): boolean {
    // In a failed transaction Postgres rejects the Parse (25P02): the server answers.
    const a = status === 'E' ? null : localAnswer(sql, this.statements, pinned, status, this.route);
    if (a === null) {
      if (name === '') this.local?.forgetUnnamed();
      return false;
    }
    if (name !== '' && this.statements.has(name))
      this.fail(plan, '42P05', `prepared statement "${name}" already exists`);
    else {
      (this.local ??= new LocalStatements(this.statements)).parsed(name, sql, a);
      plan.push(Slot.Synthetic, 0, PARSE_COMPLETE);
    }
    return true;
  }

  /** The server refused the statement of the slot tagged `tag` (0A000, its result type changed): see invalidatePlan. */
  stalePlan(tag: number): void {
    const t = this.tags?.get(tag);
    if (t?.bind) invalidatePlan(this.scope, t.shared);
  }

  /** A request is redone on another server (25006): the statements its Parses named are parsed again there. */
  undoParses(batch: readonly Buffer[]): void {
    for (const f of batch) {
      if (f[0] !== FE.Parse) continue;
      const name = decodeParse(f).name;
      if (name !== '') this.statements.delete(name);
    }
  }

  /** A request failed where pgnear split it (a diverted replica read): skip the client's messages up to Sync. */
  skipUntilSync(): void {
    this.localError = true;
  }

  /** A Parse this handler sent got its reply; if it failed, the statement does not exist. */
  settled(tag: number, ok: boolean): void {
    const t = this.tags?.get(tag);
    if (!t) return;
    this.tags!.delete(tag);
    if (t.bind) return;
    if (ok) {
      markGood(this.scope, t.shared);
      return;
    }
    if (t.restore) {
      if (!this.statements.has(t.name)) this.statements.add(t.name, t.restore);
      return;
    }
    if (t.name && this.statements.get(t.name)?.shared === t.shared) this.statements.delete(t.name);
    t.ss?.forget(t.shared);
  }

  /** Close statements the server evicted from its cache before the client's messages run. */
  closeEvicted(out: TxOutput): void {
    const ss = serverStatements(out.server, this.maxPrepared);
    for (const name of ss.toClose.splice(0)) {
      out.send(encodeTarget(FE.Close, KIND_STATEMENT, name));
      out.plan.push(Slot.Hidden);
    }
  }

  private parse(f: Buffer, out: TxOutput): boolean {
    const p = decodeParse(f);
    if (this.localParse(p.name, p.sql, out.pinned, out.server.txStatus, out.plan)) return false;
    const effects = this.effectsFor(p.sql);
    if (effects.pins.length) out.pin(effects.pins[0]);
    if (p.name === '') {
      this.unnamedEffects = effects;
      out.plan.push(Slot.Ext);
      return true;
    }
    if (this.statements.has(p.name))
      return this.fail(out.plan, '42P05', `prepared statement "${p.name}" already exists`);
    const shared = sharedName(p.sql, p.types);
    const gen = planGeneration(this.scope, shared);
    const st: ClientStatement = { shared, sql: p.sql, types: ownedCopy(p.types), effects, gen };
    if (!this.statements.add(p.name, st)) {
      return this.fail(
        out.plan,
        '54000',
        `too many prepared statements on this connection (pgnear keeps at most ${this.maxPrepared * 10})`,
      );
    }
    const ss = this.onServer(st, out);
    if (ss === null) {
      // Tagged: if the server skips this point (an earlier error), the client statement must not exist either.
      out.plan.push(Slot.Synthetic, this.tag(p.name, st.shared, null), PARSE_COMPLETE);
      return false;
    }
    out.send(encodeParse(st.shared, st.sql, st.types));
    out.plan.push(Slot.Ext, this.tag(p.name, st.shared, ss));
    return false;
  }

  private bind(f: Buffer, out: TxOutput): boolean {
    const name = bindStatement(f);
    const st = name === '' ? undefined : this.statements.get(name);
    if (!st) {
      // Unnamed, or unknown: the server answers exactly as Postgres does (26000 names the client's statement).
      if (name === '' && this.unnamedEffects) this.apply(this.unnamedEffects, out);
      out.plan.push(Slot.Ext);
      return true;
    }
    // The client prepared it before its plan went stale: Postgres would refuse it until it is prepared again.
    if (st.gen !== planGeneration(this.scope, st.shared)) return this.fail(out.plan, STALE_PLAN);
    this.ensurePrepared(st, out);
    if (st.effects) this.apply(st.effects, out);
    out.send(rewriteBindStatement(f, st.shared));
    out.plan.push(Slot.Ext, this.bindTag(st.shared));
    return false;
  }

  private describe(f: Buffer, out: TxOutput): boolean {
    const d = decodeTarget(f);
    const st = d.kind === KIND_STATEMENT && d.name !== '' ? this.statements.get(d.name) : undefined;
    if (!st) {
      out.plan.push(Slot.Ext);
      return true;
    }
    this.ensurePrepared(st, out);
    out.send(encodeTarget(FE.Describe, KIND_STATEMENT, st.shared));
    out.plan.push(Slot.Ext);
    return false;
  }

  private close(f: Buffer, out: TxOutput): boolean {
    const c = decodeTarget(f);
    if (c.kind !== KIND_STATEMENT || c.name === '') {
      out.plan.push(Slot.Ext);
      return true;
    }
    // Shared statements stay prepared on the servers for other clients; closing a missing name is no error.
    const st = this.statements.get(c.name);
    this.statements.delete(c.name);
    out.plan.push(Slot.Synthetic, st ? this.tag(c.name, st.shared, null, st) : 0, CLOSE_COMPLETE);
    return false;
  }

  /** The server lacks the shared statement (another server prepared it, or it was evicted): prepare it quietly. */
  private ensurePrepared(st: ClientStatement, out: TxOutput): void {
    const ss = this.onServer(st, out);
    if (ss === null) return;
    out.send(encodeParse(st.shared, st.sql, st.types));
    out.plan.push(Slot.Hidden, this.tag('', st.shared, ss));
  }

  /**
   * null: the attached server holds the statement in its current plan generation. Otherwise the server's
   * statements, the statement recorded there, and a stale version closed first: the caller sends the Parse.
   */
  private onServer(st: ClientStatement, out: TxOutput): ServerStatements | null {
    const ss = serverStatements(out.server, this.maxPrepared);
    const gen = planGeneration(this.scope, st.shared);
    const had = ss.genOf(st.shared);
    if (had === gen) return null;
    if (had !== undefined) {
      out.send(encodeTarget(FE.Close, KIND_STATEMENT, st.shared));
      out.plan.push(Slot.Hidden);
    }
    ss.add(st.shared, gen);
    return ss;
  }

  /** Tag of a Bind slot: if its statement's plan turns out stale, stalePlan finds the statement by it. */
  private bindTag(shared: string): number {
    const t = this.tag('', shared, null);
    this.tags!.get(t)!.bind = true;
    return t;
  }

  /** The analyzer's effects, plus whether the SQL drops every prepared statement (drivers send it either way). */
  private effectsFor(sql: string): Effects {
    const e = this.analyzer.analyze(sql);
    if (sql.length < 64 && (DISCARD_ALL.test(sql) || DEALLOCATE_ALL.test(sql))) return { ...e, dropsStatements: true };
    // SET pgnear.* through the extended protocol (postgres.js sends everything that way): the server accepts it
    // as a placeholder setting, and pgnear takes it for itself when it runs.
    if (sql.length < 256 && OWN_SETTING.test(sql)) return { ...e, ownSetting: sql };
    return e;
  }

  private apply(e: Effects, out: TxOutput): void {
    if (e.dropsStatements) this.dropAllStatements(out);
    if (e.ownSetting) this.route.applySetting(e.ownSetting);
    if (e.pins.length) out.pin(e.pins[0]);
    if (e.sets.length) this.params.noteSet(e.sets);
    if (e.resets.length) this.params.noteReset(e.resets, out.server);
    if (e.resetAll) this.params.noteResetAll(out.server);
  }

  private dropAllStatements(out: TxOutput): void {
    this.statements.clear();
    serverStatements(out.server, this.maxPrepared).clear();
  }

  private fail(plan: ResponsePlan, code: string | ErrorFields, message = ''): boolean {
    this.localError = true;
    const fields: ErrorFields = typeof code === 'string' ? { severity: 'ERROR', code, message } : code;
    plan.push(Slot.Synthetic, 0, encodeError(fields));
    return false;
  }

  private tag(name: string, shared: string, ss: ServerStatements | null, restore?: ClientStatement): number {
    const t = this.nextTag++;
    if (this.nextTag > 0x3fffffff) this.nextTag = 1; // a small integer (SMI): no heap number in the plan's ring
    (this.tags ??= new Map()).set(t, { name, shared, ss, restore });
    return t;
  }
}
