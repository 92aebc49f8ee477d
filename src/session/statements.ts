// Prepared statements under transaction pooling: each client's names map to pgnear-owned names shared by
// every client with the same text and parameter types, prepared lazily on whichever server runs them.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { ServerConn } from '../pool/server-conn.js';
import type { SqlEffects } from './context.js';
import type { LocalAnswer } from './local-statements.js';

/** A statement as the client prepared it. */
export interface ClientStatement {
  /** pgnear's name on the servers. */
  shared: string;
  sql: string;
  /** Parameter-type section of the Parse (count + oids). */
  types: Buffer;
  /** Session effects of the text, applied each time it is bound (set by TxMessages). */
  effects?: SqlEffects;
  /** The plan generation of the shared statement when the client prepared it (see invalidatePlan). */
  gen: number;
  /** pgnear answers it (SHOW pgnear.*, EXPLAIN ROUTE): no server ever sees it. */
  local?: LocalAnswer;
}

/** pgnear's name for (text, parameter types): deterministic, so no global registry is needed. */
export function sharedName(sql: string, types: Buffer): string {
  return `pgnear_${createHash('sha1').update(types).update('\0').update(sql).digest('base64url').slice(0, 22)}`;
}

/** Statements one server has prepared under shared names, bounded; evicted ones are closed on next use. */
export class ServerStatements {
  /** Names evicted from the cache, to Close on the server before its next request. */
  readonly toClose: string[] = [];
  /** Name → the plan generation it was prepared in (see invalidatePlan). */
  private readonly cache: LRUCache<string, number>;

  constructor(max: number) {
    this.cache = new LRUCache<string, number>({
      max,
      dispose: (_v, name, reason) => {
        if (reason === 'evict') this.toClose.push(name);
      },
    });
  }

  /** The generation the server prepared it in; undefined if it does not hold it. */
  genOf(name: string): number | undefined {
    const g = this.cache.get(name);
    if (g !== undefined) return g;
    // Evicted but not closed yet: the server still holds it (a second Parse would fail with 42P05), so keep it.
    const i = this.toClose.indexOf(name);
    if (i < 0) return undefined;
    this.toClose.splice(i, 1);
    this.cache.set(name, 0);
    return 0;
  }

  has(name: string): boolean {
    return this.genOf(name) !== undefined;
  }

  add(name: string, gen = 0): void {
    this.cache.set(name, gen);
  }

  /** The server lost it (its Parse failed). */
  forget(name: string): void {
    this.cache.delete(name);
  }

  /** DEALLOCATE ALL / DISCARD ALL ran on the server. */
  clear(): void {
    this.cache.clear();
    this.toClose.length = 0;
  }
}

/**
 * DDL can change a statement's result type, which Postgres refuses for a statement prepared before (0A000 "cached
 * plan must not change result type", until the client prepares it again). A shared statement outlives the clients
 * that prepared it, so when a server refuses one, its generation moves on: servers prepare it afresh before its next
 * use, and clients that prepared it before get the same 0A000 from pgnear (their driver holds the old row shape)
 * until they prepare it again, as with Postgres itself. Only statements that ever went stale are kept here.
 */
const staleGens = new LRUCache<string, number>({ max: 10_000 });
let anyStale = false;

export function planGeneration(scope: string, shared: string): number {
  return anyStale ? (staleGens.get(`${scope}\0${shared}`) ?? 0) : 0;
}

export function invalidatePlan(scope: string, shared: string): void {
  staleGens.set(`${scope}\0${shared}`, planGeneration(scope, shared) + 1);
  anyStale = true;
}

const perServer = new WeakMap<ServerConn, ServerStatements>();

/**
 * Shared statements some server has prepared successfully: a client's Parse of one of them can be answered
 * without a server (a blocked client never waits for a server just to prepare), and prepared on use.
 */
const knownGood = new LRUCache<string, true>({ max: 20_000 });

export function markGood(scope: string, shared: string): void {
  knownGood.set(`${scope}\0${shared}`, true);
}

export function isKnownGood(scope: string, shared: string): boolean {
  return knownGood.get(`${scope}\0${shared}`) === true;
}

export function serverStatements(conn: ServerConn, max: number): ServerStatements {
  let s = perServer.get(conn);
  if (!s) {
    s = new ServerStatements(max);
    perServer.set(conn, s);
  }
  return s;
}

/** One client's protocol-level named statements. */
export class ClientStatements {
  /** Created on the first statement: most clients of a transaction pool never prepare one (memory per client). */
  private byName: Map<string, ClientStatement> | null = null;

  constructor(private readonly max: number) {}

  get(name: string): ClientStatement | undefined {
    return this.byName?.get(name);
  }

  has(name: string): boolean {
    return this.byName?.has(name) ?? false;
  }

  /** False when the client already holds as many statements as allowed. */
  add(name: string, st: ClientStatement): boolean {
    const byName = (this.byName ??= new Map());
    if (byName.size >= this.max * 10 && !byName.has(name)) return false;
    byName.set(name, st);
    return true;
  }

  delete(name: string): void {
    this.byName?.delete(name);
  }

  /** A name of the client's for the shared statement (a scan: for the rare error message that names it). */
  nameOf(shared: string): string | undefined {
    if (this.byName) for (const [name, st] of this.byName) if (st.shared === shared) return name;
    return undefined;
  }

  clear(): void {
    this.byName = null;
  }

  get size(): number {
    return this.byName?.size ?? 0;
  }
}
