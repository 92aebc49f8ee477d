// One client's routing state (SET pgnear.*, its last write LSN) and the route of each request it sends,
// plus pgnear's own answers to SET/SHOW pgnear.* and EXPLAIN ROUTE.
import { encodeCommandComplete, encodeError, encodeTextResult } from '../protocol/backend.js';
import { BE, FE, type TxStatus } from '../protocol/codes.js';
import { bindStatement, decodeParse } from '../protocol/extended.js';
import { decodeQuery, queryStart, REQUEST_END } from '../protocol/frontend.js';
import { parseHints } from '../routing/hints.js';
import { formatLsn, maxLsn, parseLsn, replayTarget } from '../util/lsn.js';
import type { Consistency, Decision, RouteInput, RouteNodes } from '../routing/router.js';
import type { RoutingServices } from './context.js';
import { parseOptions } from './session-params.js';
import type { LocalAnswer } from './local-statements.js';

const TXN_START = /^(?:\s|--[^\n]*\n|\/\*[^]*?\*\/)*(?:begin|start\s+transaction)\b/i;
const READ_ONLY = /\bread\s+only\b/i;
/**
 * Drivers asking whether the session can write (pgjdbc's targetServerType=primary, libpq's target_session_attrs):
 * through pgnear it can, so the primary answers them, not a replica.
 */
const WRITABLE_PROBE = /^\s*(?:show\s+transaction_read_only|select\s+pg_catalog\.pg_is_in_recovery\(\))\s*;?\s*$/i;
/** A hot standby refuses serializable transactions (0A000), read-only ones too: they stay on the primary. */
const SERIALIZABLE = /\bserializable\b/i;
const PGNEAR_SET = /^\s*(set|reset|show)\s+(?:session\s+)?pgnear\.(\w+)\s*(?:(?:=|to)\s*'?([^';]*?)'?)?\s*;?\s*$/i;
const EXPLAIN_ROUTE = /^\s*explain\s+route\s+([^]+)$/i;
const SHOW_OR_EXPLAIN = /^\s*(?:show\s+pgnear\.|explain\s+route\s)/i;
const PGNEAR_LOWER = Buffer.from('pgnear');
const PGNEAR_UPPER = Buffer.from('PGNEAR');

/**
 * A byte filter run on every Query before decoding it: pgnear's own statements start with SET / RESET / SHOW
 * (naming pgnear.*) or EXPLAIN (both regexes are anchored). Needles are Buffers: a string needle is re-encoded
 * on every call.
 */
function mayBeOwn(frame: Buffer): boolean {
  const i = queryStart(frame);
  const c = frame[i] | 0x20;
  if (c === 0x65) return true;
  if (c !== 0x73 && c !== 0x72) return frame[i] >= 0x80; // non-ASCII (e.g. a Unicode space): let the regexes decide
  return frame.indexOf(PGNEAR_LOWER, i) >= 0 || frame.indexOf(PGNEAR_UPPER, i) >= 0;
}
const BEGIN_ONLY = /^\s*(?:begin|start\s+transaction)\b[^;]*;?\s*$/i;
const SET_TRANSACTION = /^\s*set\s+transaction\b[^;]*;?\s*$/i;
const END_TXN = /^\s*(commit|end|rollback|abort)(?:\s+(?:work|transaction))?(?:\s+and\s+no\s+chain)?\s*;?\s*$/i;
const ROUTES = new Set(['primary', 'replica', 'auto']);
const CONSISTENCIES = new Set(['session', 'global', 'token', 'eventual']);

export interface Intercepted {
  reply: Buffer;
  /** The transaction status the client is in after it. */
  status: TxStatus;
}

export interface RoutePlan {
  decision: Decision;
  /** A write or a transaction on the primary: learn the WAL position after it, for read-your-writes. */
  captureLsn: boolean;
  /** A read on a replica outside a transaction: a 25006 may be retried on the primary. */
  retryable: boolean;
  /** How many of the queued messages this route is for (the rest is routed after them). */
  covers: number;
  /** A deferred BEGIN (with SET TRANSACTION) to run first, its replies hidden; null = none. */
  begin: string | null;
  /** Statement texts of the request (for 25006 bookkeeping). */
  texts: string[];
}

export class RouteSession {
  route: 'primary' | 'replica' | 'auto' = 'auto';
  consistency: Consistency;
  tokenLsn: bigint | null = null;
  lastWriteLsn: bigint | null = null;
  private unnamedSql = '';
  /**
   * A BEGIN (and SET TRANSACTION) pgnear answered itself: the transaction starts on the server chosen for its
   * first real statement, sent together with it (so hints and READ ONLY set after BEGIN count).
   */
  private pendingTxn: string[] = [];

  /** The client believes it is in a transaction that no server holds yet. */
  get deferredTxn(): boolean {
    return this.pendingTxn.length > 0;
  }

  constructor(
    private readonly r: RoutingServices,
    private readonly who: { user: string; database: string; applicationName: string },
    startup: Map<string, string>,
    /** The client's current session settings (SessionParams). */
    private readonly session: { get(name: string): string | undefined } | null = null,
  ) {
    this.consistency = r.consistency;
    const opts = startup.get('options');
    // As in Postgres, startup parameters win over -c options.
    const settings: [string, string][] = [...(opts ? parseOptions(opts) : []), ...startup.entries()];
    for (const [k, v] of settings) if (k.toLowerCase().startsWith('pgnear.')) this.set(k.slice(7).toLowerCase(), v);
  }

  /** The session's default isolation is serializable (startup, SET, SET SESSION CHARACTERISTICS). */
  private serializableSession(): boolean {
    return this.session?.get('default_transaction_isolation')?.toLowerCase() === 'serializable';
  }

  /** The LSN a read must observe under the client's consistency scope. */
  minLsn(scope: Consistency = this.consistency): bigint | null {
    switch (scope) {
      case 'session':
        return this.lastWriteLsn;
      case 'global':
        return maxLsn(this.r.global.lsn, this.lastWriteLsn);
      case 'token':
        return maxLsn(this.tokenLsn, this.lastWriteLsn);
      default:
        return null;
    }
  }

  /** A write committed; its LSN is being read (global-scope reads elsewhere wait for it). */
  writing(): void {
    this.r.global.begin();
  }

  /** The LSN of the write announced by writing(), or null if it could not be read. */
  noteWrite(raw: bigint | null): void {
    const lsn = raw === null ? null : replayTarget(raw);
    if (lsn !== null) this.lastWriteLsn = maxLsn(this.lastWriteLsn, lsn);
    this.r.global.end(lsn);
  }

  /** Does this client's next read depend on writes of other clients (global scope)? */
  get global(): boolean {
    return this.consistency === 'global';
  }

  /** Where a complete request (the messages queued while the client held no server) goes. */
  plan(batch: readonly Buffer[], statementSql: (name: string) => string | undefined, retry: boolean): RoutePlan | null {
    // Requests end at Query, Sync, Flush or FunctionCall (a trailing partial one counts too). Leading reads go
    // together to a replica; a write behind them waits for its own route. A write or a transaction first takes
    // everything queued to the server it goes to.
    if (!this.r.enabled) return this.toPrimary(batch.length, 'write');
    const texts: string[] = [];
    let req: string[] = [];
    let reqWrite = false;
    let write = false;
    let knownWrite = false;
    const begin = this.pendingTxn.length ? this.pendingTxn.join('; ') : null;
    this.pendingTxn = [];
    let txn = begin !== null;
    let covers = 0;
    let parsed: Map<string, string> | undefined;
    let dataWrite = false;
    for (let i = 0; i < batch.length; i++) {
      const f = batch[i];
      const t = f[0];
      if (t === FE.Query) req.push(decodeQuery(f));
      else if (t === FE.Parse) {
        const p = decodeParse(f);
        req.push(p.sql);
        if (p.name === '') this.unnamedSql = p.sql;
        else (parsed ??= new Map()).set(p.name, p.sql);
      } else if (t === FE.Bind) {
        const name = bindStatement(f);
        // A statement parsed in this very batch is not registered yet (that happens when it is sent).
        const sql = name === '' ? this.unnamedSql : (parsed?.get(name) ?? statementSql(name));
        if (sql === undefined) reqWrite = dataWrite = true;
        else if (name !== '' || !req.includes(sql)) req.push(sql);
      } else if (t === FE.FunctionCall) reqWrite = dataWrite = true;
      if (!REQUEST_END[t] && i < batch.length - 1) continue;
      let known = false;
      for (const sql of req) {
        const a = this.r.classify(sql);
        if (a.write) {
          reqWrite = true;
          // SET/RESET/set_config change the session, not data: no WAL position to wait for afterwards.
          if (!(a.count === 1 && (a.sets.length > 0 || a.resets.length > 0 || a.resetAll))) dataWrite = true;
        } else if (sql.length < 64 && WRITABLE_PROBE.test(sql)) reqWrite = true;
        if (this.r.knownWrites.has(sql)) known = true;
      }
      if (covers === 0) txn ||= TXN_START.test(req[0] ?? '');
      else if (reqWrite || known) break;
      texts.push(...req);
      write ||= reqWrite;
      knownWrite ||= known;
      covers = i + 1;
      if (write || knownWrite || txn || retry) covers = batch.length;
      req = [];
      reqWrite = false;
    }
    const first = texts[0] ?? '';
    const nodes = this.r.nodes();
    const decision: Decision | null = retry
      ? primaryDecision(nodes, 'retry_25006')
      : this.r.decide(this.input(first, write, txn, knownWrite, begin), nodes);
    if (!decision) return null;
    if (retry) for (const sql of texts) this.r.knownWrites.add(sql);
    this.r.onDecision(decision);
    const hasReplicas = nodes.replicas.length > 0;
    return {
      decision,
      captureLsn:
        hasReplicas &&
        decision.role === 'primary' &&
        (dataWrite || knownWrite || (txn && !READ_ONLY.test(begin ?? first)) || retry),
      retryable: decision.role === 'replica' && !txn,
      covers: decision.role === 'replica' ? covers : batch.length,
      texts,
      begin,
    };
  }

  /**
   * Could this statement need the primary (a write, a transaction start, a text that failed on a replica)? Asked
   * of statements that follow a read on a replica within one request (after Flush, or a long request).
   */
  mayWrite(sql: string): boolean {
    if (!this.r.enabled) return false;
    return this.r.classify(sql).write || TXN_START.test(sql) || this.r.knownWrites.has(sql);
  }

  /** Routing is off: the whole queue goes to the primary, nothing to classify or capture. */
  private toPrimary(covers: number, reason: 'write'): RoutePlan | null {
    const decision = primaryDecision(this.r.nodes(), reason);
    if (!decision) return null;
    this.r.onDecision(decision);
    return { decision, captureLsn: false, retryable: false, covers, texts: [], begin: null };
  }

  private input(
    sql: string,
    write: boolean,
    txn: boolean,
    knownWrite: boolean,
    begin: string | null = null,
  ): RouteInput {
    const rule = this.r.matchRule({ ...this.who, sql });
    return {
      write,
      inTransaction: txn,
      txnReadOnly: txn && READ_ONLY.test(begin ?? sql),
      serializable: (txn && SERIALIZABLE.test(begin ?? sql)) || this.serializableSession(),
      hint: parseHints(sql),
      sessionRoute: this.route,
      rule,
      minLsn: write ? null : this.minLsn(rule?.consistency),
      knownWrite,
    };
  }

  /**
   * pgnear's own reply (without ReadyForQuery) to SET/RESET/SHOW pgnear.*, EXPLAIN ROUTE and, while the client
   * holds no server, BEGIN / SET TRANSACTION / COMMIT of a deferred transaction; null = not ours.
   */
  intercept(frame: Buffer, status: TxStatus, detached: boolean): Intercepted | null {
    if (detached && this.r.enabled && status === 'I') {
      const t = this.transactionControl(frame);
      if (t) return t;
    }
    const st: TxStatus = detached && this.pendingTxn.length ? 'T' : status;
    const reply = this.own(frame, st);
    return reply && { reply, status: st };
  }

  /** BEGIN, SET TRANSACTION, COMMIT/ROLLBACK as single simple queries, while no server holds the transaction. */
  private transactionControl(frame: Buffer): Intercepted | null {
    const c = frame.length > 5 ? frame[5] | 0x20 : 0;
    // Cheap first-letter filter (b, s, c, e, r, a, or leading whitespace) before decoding the text.
    if (c !== 0x62 && c !== 0x73 && c !== 0x63 && c !== 0x65 && c !== 0x72 && c !== 0x61 && frame[5] > 0x20)
      return null;
    const sql = decodeQuery(frame);
    if (this.pendingTxn.length === 0) {
      if (!BEGIN_ONLY.test(sql)) return null;
      this.pendingTxn.push(sql.replace(/;\s*$/, ''));
      return { reply: encodeCommandComplete('BEGIN'), status: 'T' };
    }
    if (SET_TRANSACTION.test(sql)) {
      this.pendingTxn.push(sql.replace(/;\s*$/, ''));
      return { reply: encodeCommandComplete('SET'), status: 'T' };
    }
    const end = END_TXN.exec(sql);
    if (!end) return null;
    this.pendingTxn = [];
    const w = end[1].toLowerCase();
    return { reply: encodeCommandComplete(w === 'commit' || w === 'end' ? 'COMMIT' : 'ROLLBACK'), status: 'I' };
  }

  private own(frame: Buffer, status: TxStatus): Buffer | null {
    return mayBeOwn(frame) ? this.ownSql(decodeQuery(frame), status) : null;
  }

  /** SHOW pgnear.* / EXPLAIN ROUTE in the extended protocol: RowDescription now, the row when run (SET/RESET
   * go through applySetting; an unknown name is left to the server, which answers as Postgres does). */
  ownAnswer(sql: string, status: TxStatus): LocalAnswer | null {
    if (!SHOW_OR_EXPLAIN.test(sql)) return null;
    const first = this.ownSql(sql, status);
    if (first === null || first[0] !== BE.RowDescription) return null;
    const end = first.readInt32BE(1) + 1;
    return {
      rowDescription: first.subarray(0, end),
      run: () => {
        const r = this.ownSql(sql, status) ?? first;
        return r.subarray(r.readInt32BE(1) + 1);
      },
    };
  }

  private ownSql(sql: string, status: TxStatus): Buffer | null {
    const m = PGNEAR_SET.exec(sql);
    if (m) {
      const verb = m[1].toLowerCase();
      const name = m[2].toLowerCase();
      if (verb === 'show') {
        const v = this.show(name);
        if (v === undefined) return unknownSetting(name);
        return encodeTextResult([`pgnear.${name}`], [[v]], 'SHOW');
      }
      const err = verb === 'reset' ? this.reset(name) : this.set(name, m[3] ?? '');
      return err ?? encodeCommandComplete(verb === 'reset' ? 'RESET' : 'SET');
    }
    const e = EXPLAIN_ROUTE.exec(sql);
    if (!e) return null;
    const target = e[1].trim();
    const write = this.r.classify(target).write;
    const txn = status !== 'I' || TXN_START.test(target);
    const d =
      status !== 'I'
        ? null
        : this.r.decide(this.input(target, write, txn, this.r.knownWrites.has(target)), this.r.nodes());
    const fp = this.r.fingerprint(target) ?? '';
    const min = this.minLsn();
    const row = d
      ? [
          d.node,
          d.role,
          d.reason,
          d.waitLsn !== undefined ? formatLsn(d.waitLsn) : null,
          min !== null ? formatLsn(min) : null,
          fp,
        ]
      : ['(current)', '(current)', 'in_transaction', null, min !== null ? formatLsn(min) : null, fp];
    return encodeTextResult(['node', 'role', 'reason', 'wait_lsn', 'min_lsn', 'fingerprint'], [row], 'EXPLAIN');
  }

  /** A SET/RESET pgnear.* the server ran for the client (extended protocol): take it for ourselves too. */
  applySetting(sql: string): void {
    const m = PGNEAR_SET.exec(sql);
    if (!m || m[1].toLowerCase() === 'show') return;
    if (m[1].toLowerCase() === 'reset') this.reset(m[2].toLowerCase());
    else this.set(m[2].toLowerCase(), m[3] ?? '');
  }

  private show(name: string): string | undefined {
    switch (name) {
      case 'route':
        return this.route;
      case 'consistency':
        return this.consistency;
      case 'min_lsn':
        return this.tokenLsn !== null ? formatLsn(this.tokenLsn) : '';
      case 'last_write_lsn': {
        const l = this.lastWriteLsn;
        return l !== null ? formatLsn(l) : '';
      }
      default:
        return undefined;
    }
  }

  private set(name: string, value: string): Buffer | null {
    const v = value.trim();
    if (name === 'route' && ROUTES.has(v.toLowerCase())) this.route = v.toLowerCase() as typeof this.route;
    else if (name === 'consistency' && CONSISTENCIES.has(v.toLowerCase()))
      this.consistency = v.toLowerCase() as Consistency;
    else if (name === 'min_lsn') {
      const l = v === '' ? null : parseLsn(v);
      if (v !== '' && l === null) return invalidValue(name, v);
      this.tokenLsn = l === null ? null : replayTarget(l);
    } else if (this.show(name) === undefined) return unknownSetting(name);
    else return invalidValue(name, v);
    return null;
  }

  private reset(name: string): Buffer | null {
    if (name === 'route') this.route = 'auto';
    else if (name === 'consistency') this.consistency = this.r.consistency;
    else if (name === 'min_lsn') this.tokenLsn = null;
    else return unknownSetting(name);
    return null;
  }
}

function primaryDecision(nodes: RouteNodes, reason: 'write' | 'retry_25006'): Decision | null {
  return nodes.primary && { node: nodes.primary.name, role: 'primary', reason };
}

const unknownSetting = (name: string) =>
  encodeError({ severity: 'ERROR', code: '42704', message: `unrecognized configuration parameter "pgnear.${name}"` });
const invalidValue = (name: string, v: string) =>
  encodeError({ severity: 'ERROR', code: '22023', message: `invalid value for parameter "pgnear.${name}": "${v}"` });
