// One client's routing state (SET pgnear.*, its last write LSN) and the route of each request it sends,
// plus pgnear's own answers to SET/SHOW pgnear.* and EXPLAIN ROUTE.
import { encodeCommandComplete, encodeError, encodeTextResult } from '../protocol/backend.js';
import { FE, type TxStatus } from '../protocol/codes.js';
import { bindStatement, decodeParse } from '../protocol/extended.js';
import { decodeQuery } from '../protocol/frontend.js';
import { parseHints } from '../routing/hints.js';
import { formatLsn, maxLsn, parseLsn } from '../routing/lsn.js';
import type { Consistency, Decision, RouteInput } from '../routing/router.js';
import type { RoutingServices } from './context.js';
import { parseOptions } from './session-params.js';

const TXN_START = /^(?:\s|--[^\n]*\n|\/\*[^]*?\*\/)*(?:begin|start\s+transaction)\b/i;
const READ_ONLY = /\bread\s+only\b/i;
const PGNEAR_SET = /^\s*(set|reset|show)\s+(?:session\s+)?pgnear\.(\w+)\s*(?:(?:=|to)\s*'?([^';]*?)'?)?\s*;?\s*$/i;
const EXPLAIN_ROUTE = /^\s*explain\s+route\s+([^]+)$/i;
const ROUTES = new Set(['primary', 'replica', 'auto']);
const CONSISTENCIES = new Set(['session', 'global', 'token', 'eventual']);

export interface RoutePlan {
  decision: Decision;
  /** A write or a transaction on the primary: learn the WAL position after it, for read-your-writes. */
  captureLsn: boolean;
  /** A read on a replica outside a transaction: a 25006 may be retried on the primary. */
  retryable: boolean;
  /** Statement texts of the request (for 25006 bookkeeping). */
  texts: string[];
}

export class RouteSession {
  route: 'primary' | 'replica' | 'auto' = 'auto';
  consistency: Consistency;
  tokenLsn: bigint | null = null;
  lastWriteLsn: bigint | null = null;
  private unnamedSql = '';

  constructor(
    private readonly r: RoutingServices,
    private readonly who: { user: string; database: string; applicationName: string },
    startup: Map<string, string>,
  ) {
    this.consistency = r.consistency;
    const opts = startup.get('options');
    const settings: [string, string][] = [...startup.entries(), ...(opts ? parseOptions(opts) : [])];
    for (const [k, v] of settings) if (k.toLowerCase().startsWith('pgnear.')) this.set(k.slice(7).toLowerCase(), v);
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

  noteWrite(raw: bigint): void {
    const lsn = replayable(raw);
    this.lastWriteLsn = maxLsn(this.lastWriteLsn, lsn);
    this.r.global.lsn = maxLsn(this.r.global.lsn, lsn);
  }

  /** Where a complete request (the messages queued while the client held no server) goes. */
  plan(batch: readonly Buffer[], statementSql: (name: string) => string | undefined, retry: boolean): RoutePlan | null {
    const texts: string[] = [];
    let unknown = false;
    for (const f of batch) {
      const t = f[0];
      if (t === FE.Query) texts.push(decodeQuery(f));
      else if (t === FE.Parse) {
        const p = decodeParse(f);
        texts.push(p.sql);
        if (p.name === '') this.unnamedSql = p.sql;
      } else if (t === FE.Bind) {
        const name = bindStatement(f);
        const sql = name === '' ? this.unnamedSql : statementSql(name);
        if (sql === undefined) unknown = true;
        else if (name !== '' || !texts.includes(sql)) texts.push(sql);
      } else if (t === FE.FunctionCall) unknown = true;
    }
    const first = texts[0] ?? '';
    const txn = TXN_START.test(first);
    let write = unknown;
    let knownWrite = false;
    for (const sql of texts) {
      if (this.r.classify(sql).write) write = true;
      if (this.r.knownWrites.has(sql)) knownWrite = true;
    }
    const nodes = this.r.nodes();
    let decision: Decision | null;
    if (retry || !this.r.enabled)
      decision = nodes.primary && {
        node: nodes.primary.name,
        role: 'primary',
        reason: retry ? 'retry_25006' : 'write',
      };
    else decision = this.r.decide(this.input(first, write, txn, knownWrite), nodes);
    if (!decision) return null;
    if (retry) for (const sql of texts) this.r.knownWrites.add(sql);
    this.r.onDecision(decision);
    const hasReplicas = nodes.replicas.length > 0;
    return {
      decision,
      captureLsn:
        hasReplicas && decision.role === 'primary' && (write || knownWrite || txn || decision.reason === 'retry_25006'),
      retryable: decision.role === 'replica' && !txn,
      texts,
    };
  }

  private input(sql: string, write: boolean, txn: boolean, knownWrite: boolean): RouteInput {
    const rule = this.r.matchRule({ ...this.who, sql });
    return {
      write,
      inTransaction: txn,
      txnReadOnly: txn && READ_ONLY.test(sql),
      hint: parseHints(sql),
      sessionRoute: this.route,
      rule,
      minLsn: write ? null : this.minLsn(rule?.consistency),
      knownWrite,
    };
  }

  /** pgnear's own reply (without ReadyForQuery) to SET/RESET/SHOW pgnear.* and EXPLAIN ROUTE; null = not ours. */
  intercept(frame: Buffer, status: TxStatus): Buffer | null {
    if (frame.indexOf('pgnear', 5) < 0 && frame.indexOf('route', 5) < 0 && frame.indexOf('ROUTE', 5) < 0) return null;
    const sql = decodeQuery(frame);
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
      this.tokenLsn = l === null ? null : replayable(l);
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

/**
 * The insert position just past a WAL page header (page start + 24, or + 40 at a segment start) is where the next
 * record will go; replay stops at the page start when the last record ended there. No record ends inside a page
 * header, so the page start is an equivalent target that replay can actually reach.
 */
function replayable(lsn: bigint): bigint {
  const off = lsn % 8192n;
  return off > 0n && off <= 40n ? lsn - off : lsn;
}

const unknownSetting = (name: string) =>
  encodeError({ severity: 'ERROR', code: '42704', message: `unrecognized configuration parameter "pgnear.${name}"` });
const invalidValue = (name: string, v: string) =>
  encodeError({ severity: 'ERROR', code: '22023', message: `invalid value for parameter "pgnear.${name}": "${v}"` });
