// Statement analysis with the Postgres parser: session effects (SET/RESET, pins) and a read/write class.
//
// Two entry points per analyzer:
//   analyze(sql)     full parse (libpg-query, ~20 µs) cached by exact text in an LRU; gives effects and `write`.
//   effectsFast(sql) no parse: NO_SESSION_EFFECTS when a cheap lexical test proves the text has no session
//                    effect, else null (then call analyze). It says nothing about read/write.
// Measured on the 2-vCPU dev VM (Node 20, tsx; a /tmp micro-bench, not a unit test; this VM is slow, so compare ratios):
//   effectsFast ≈ 100-250 ns/op for typical 50-140-char SELECT/INSERT/UPDATE texts (mostly the one regex scan),
//     ≈ 30 ns/op to reject a SET; analyze() warm cache hit ≈ 25-70 ns/op; cold (parse + walk) ≈ 21-31 µs/op.
//   So a cache hit beats the fast path; the fast path saves the parse for texts not (yet) cached. effects() does
//   cache → fast path → parse, in that order.
//
// Semantics worth knowing:
// - Effects are names only (which GUCs changed), in first-seen order, deduplicated; values and statement order
//   are not kept, so a caller that needs the final value must ask the server (SHOW / current_setting).
// - Transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT…) is classified as a read: the router handles it.
// - Functions are recognised by the last part of their name, lower-cased, wherever they appear in the tree
//   (subqueries, CTEs, FROM, defaults of CREATE TABLE, bodies of PREPARE/DECLARE/CREATE VIEW): conservative.
//   Effects inside user functions, procedures (CALL), triggers, rules or views' stored definitions are invisible.
// - Unparsable text (the server reports the error; a simple-query string is parsed whole before anything runs):
//   write true, no effects. The parser is PG 17's: syntax newer than that is unparsable here.
import { loadModule, parseSync } from 'libpg-query';
import type { DefElem, FuncCall, IntoClause, Node, RangeVar, VariableSetStmt } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { provablyNoSessionEffects, skipTrivia } from './sql-fast-path.js';
import { DEFAULT_WRITE_FUNCTIONS, SESSION_ADVISORY } from './sql-functions.js';

export type PinReason =
  'listen' | 'temp_object' | 'advisory_lock' | 'sql_prepare' | 'with_hold_cursor' | 'untrackable_set';

/** What a string does to server-session state that a pooler must track or that ties it to one server connection. */
export interface SessionEffects {
  /** GUC names (lower-case, canonical: 'timezone', 'search_path', 'client_encoding', …) that a non-LOCAL SET / set_config(name, value, false) changes. */
  readonly sets: readonly string[];
  /** GUC names a RESET name changes. */
  readonly resets: readonly string[];
  /** RESET ALL or DISCARD ALL present. */
  readonly resetAll: boolean;
  /** Session state that cannot move between server connections; empty when none. */
  readonly pins: readonly PinReason[];
}

export interface SqlAnalysis extends SessionEffects {
  /** Read/write class for routing: true unless every statement is a pure read (transaction control counts as read). */
  readonly write: boolean;
  /** Statements in the string (0 for empty / comments only, and for unparsable text). */
  readonly count: number;
  /** Parse failed (the server will report the error; treated as write, no effects). */
  readonly unparsable: boolean;
}

export interface SqlAnalyzerOptions {
  /** LRU entries keyed by exact text (default 10,000). Texts over 16 Ki chars are never cached. */
  cacheSize?: number;
  /** Extra function names (matched lower-cased on the last name part) that make a SELECT a write. */
  extraWriteFunctions?: Iterable<string>;
}

const EMPTY: readonly never[] = Object.freeze([]);

const result = (r: SqlAnalysis): SqlAnalysis => Object.freeze(r);

/** What effectsFast returns when it proves there is nothing to track; deliberately has no `write`. */
export const NO_SESSION_EFFECTS: SessionEffects = Object.freeze({
  sets: EMPTY,
  resets: EMPTY,
  resetAll: false,
  pins: EMPTY,
});

/** A single statement without session effects that is a pure read. */
export const NO_EFFECTS: SqlAnalysis = result({ ...NO_SESSION_EFFECTS, write: false, count: 1, unparsable: false });
const EMPTY_QUERY: SqlAnalysis = result({ ...NO_EFFECTS, count: 0 });
const UNPARSABLE: SqlAnalysis = result({ ...NO_EFFECTS, write: true, count: 0, unparsable: true });

/** Settings whose change cannot be replayed on another connection without privileges. */
const UNTRACKABLE_NAMES = new Set(['role', 'session_authorization']);
const CURSOR_OPT_HOLD = 0x0020;
const MAX_CACHED_TEXT = 16 * 1024;
const MAX_CACHED_CHARS = 16 * 1024 * 1024;

// ---------------------------------------------------------------- WASM module

let ready = false;
let loading: Promise<void> | undefined;

/** Loads the parser's WASM module; idempotent, must be awaited once before analyze/analyzeSql. */
export function initSqlAnalysis(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true;
  });
  loading.catch(() => (loading = undefined)); // allow a retry; the caller still sees the rejection
  return loading;
}

/** NO_SESSION_EFFECTS when a lexical test proves the text has no session effect, else null (parse it). Never parses. */
export function sessionEffectsFast(sql: string): SessionEffects | null {
  return provablyNoSessionEffects(sql) ? NO_SESSION_EFFECTS : null;
}

// ---------------------------------------------------------------- parse-tree walk

type Obj = Record<string, unknown>;

interface Acc {
  sets: Set<string>;
  resets: Set<string>;
  resetAll: boolean;
  pins: Set<PinReason>;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/** Postgres parse_bool: true/false/yes/no/on/off and unique prefixes, 1/0; undefined if not a boolean. */
function parseBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (v === '') return undefined;
  if (v === '1' || 'true'.startsWith(v) || 'yes'.startsWith(v) || (v.length >= 2 && 'on'.startsWith(v))) return true;
  if (v === '0' || 'false'.startsWith(v) || 'no'.startsWith(v) || (v.length >= 2 && 'off'.startsWith(v))) return false;
  return undefined;
}

/** A constant argument: string, boolean, null, or undefined when not a constant (casts are looked through). */
function constant(n: Node | undefined): string | boolean | null | undefined {
  if (!isObj(n)) return undefined;
  if ('TypeCast' in n) {
    const inner = constant(n.TypeCast.arg);
    const typ = n.TypeCast.typeName?.names?.at(-1);
    const isBool = isObj(typ) && 'String' in typ && (typ.String.sval === 'bool' || typ.String.sval === 'boolean');
    if (isBool && typeof inner === 'string') return parseBool(inner);
    if (isBool && isObj(n.TypeCast.arg) && 'A_Const' in n.TypeCast.arg && n.TypeCast.arg.A_Const.ival) {
      return (n.TypeCast.arg.A_Const.ival.ival ?? 0) !== 0;
    }
    return inner;
  }
  if (!('A_Const' in n)) return undefined;
  const c = n.A_Const;
  if (c.isnull) return null;
  if (c.boolval) return c.boolval.boolval === true;
  if (c.sval) return c.sval.sval ?? '';
  return undefined;
}

function lastName(names: Node[] | undefined): string {
  const last = names?.at(-1);
  return isObj(last) && 'String' in last ? (last.String.sval ?? '').toLowerCase() : '';
}

function setName(acc: Acc, name: string, reset: boolean): void {
  const n = name.toLowerCase();
  if (UNTRACKABLE_NAMES.has(n)) acc.pins.add('untrackable_set');
  else (reset ? acc.resets : acc.sets).add(n);
}

/** set_config(setting_name, new_value, is_local), positional or named; returns whether it is a write (not local). */
function setConfig(acc: Acc, args: Node[] | undefined): boolean {
  const slots: (Node | undefined)[] = [undefined, undefined, undefined];
  let ok = true;
  (args ?? []).forEach((a, i) => {
    if (isObj(a) && 'NamedArgExpr' in a) {
      const idx = ['setting_name', 'new_value', 'is_local'].indexOf(a.NamedArgExpr.name ?? '');
      if (idx < 0) ok = false;
      else slots[idx] = a.NamedArgExpr.arg;
    } else if (i < 3) slots[i] = a;
    else ok = false;
  });
  const local = constant(slots[2]);
  const isLocal = typeof local === 'string' ? parseBool(local) : local; // an unknown-type literal coerces to bool
  if (ok && slots[2] !== undefined && isLocal === true) return false; // transaction-scoped
  const name = constant(slots[0]);
  // set_config treats a NULL is_local as false.
  if (ok && (isLocal === false || isLocal === null) && typeof name === 'string') setName(acc, name, false);
  else acc.pins.add('untrackable_set');
  return true;
}

/** Whether a call is a write; records its session effects. */
function funcCall(acc: Acc, fc: FuncCall, writeFns: ReadonlySet<string>): boolean {
  const name = lastName(fc.funcname);
  if (SESSION_ADVISORY.has(name)) acc.pins.add('advisory_lock');
  if (name === 'set_config') return setConfig(acc, fc.args);
  return writeFns.has(name);
}

const TEMP_SCHEMA = /^pg_temp(_\d+)?$/;
const MODIFYING = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
/** CREATE statements → field holding the new object's RangeVar (TEMP or pg_temp) or its qualified name (pg_temp). */
// prettier-ignore
const CREATED_REL = new Map(Object.entries({
  CreateStmt: 'relation', ViewStmt: 'view', CreateSeqStmt: 'sequence', CompositeTypeStmt: 'typevar',
}));
// prettier-ignore
const CREATED_NAME = new Map(Object.entries({
  CreateFunctionStmt: 'funcname', CreateEnumStmt: 'typeName', CreateRangeStmt: 'typeName',
  CreateDomainStmt: 'domainname', DefineStmt: 'defnames',
}));

function tempRel(acc: Acc, rel: RangeVar | undefined, onCommit?: string): void {
  if (!rel || onCommit === 'ONCOMMIT_DROP') return;
  if (rel.relpersistence === 't' || TEMP_SCHEMA.test(rel.schemaname ?? '')) acc.pins.add('temp_object');
}

function tempName(acc: Acc, names: Node[] | undefined): void {
  const first = names !== undefined && names.length > 1 ? names[0] : undefined;
  if (isObj(first) && 'String' in first && TEMP_SCHEMA.test(first.String.sval ?? '')) acc.pins.add('temp_object');
}

/** Visits every node under `root`: records effects, returns whether anything in it makes the statement a write. */
function walk(acc: Acc, root: unknown, writeFns: ReadonlySet<string>): boolean {
  let write = false;
  // Pre-order with children pushed in reverse: nodes are met in field/list order, so effects keep source order.
  const keys: string[] = [''];
  const vals: unknown[] = [root];
  const push = (key: string, v: unknown): void => {
    if (!isObj(v)) return;
    keys.push(key);
    vals.push(v);
  };
  while (vals.length > 0) {
    const k = keys.pop()!;
    const c = vals.pop();
    if (k === 'FuncCall') {
      if (funcCall(acc, c as FuncCall, writeFns)) write = true;
    } else if (MODIFYING.has(k) || (k === 'lockingClause' && Array.isArray(c) && c.length > 0)) {
      write = true;
    } else if (k === 'intoClause' || k === 'into') {
      write = true; // SELECT … INTO / CREATE TABLE … AS
      tempRel(acc, (c as IntoClause).rel, (c as IntoClause).onCommit);
    } else if (CREATED_REL.has(k)) {
      tempRel(acc, (c as Obj)[CREATED_REL.get(k)!] as RangeVar, (c as Obj).oncommit as string | undefined);
    } else if (CREATED_NAME.has(k)) {
      tempName(acc, (c as Obj)[CREATED_NAME.get(k)!] as Node[]);
    }
    if (Array.isArray(c)) {
      for (let i = c.length - 1; i >= 0; i--) push('', c[i]);
    } else if (isObj(c)) {
      const own = Object.keys(c);
      for (let i = own.length - 1; i >= 0; i--) push(own[i], c[own[i]]);
    }
  }
  return write;
}

function variableSet(acc: Acc, s: VariableSetStmt): void {
  if (s.is_local) return;
  const name = s.name ?? '';
  switch (s.kind) {
    case 'VAR_SET_VALUE':
    case 'VAR_SET_DEFAULT':
    case 'VAR_SET_CURRENT':
      setName(acc, name, false);
      break;
    case 'VAR_RESET':
      setName(acc, name, true);
      break;
    case 'VAR_RESET_ALL':
      acc.resetAll = true;
      break;
    case 'VAR_SET_MULTI': // SET TRANSACTION [SNAPSHOT] is transaction-scoped
      if (name !== 'SESSION CHARACTERISTICS') break;
      for (const a of s.args ?? []) {
        const d = isObj(a) && 'DefElem' in a ? a.DefElem : undefined;
        if (d?.defname?.startsWith('transaction_')) setName(acc, `default_${d.defname}`, false);
      }
      break;
  }
}

/** EXPLAIN runs the statement only with ANALYZE (bare, or a true boolean argument; last one wins). */
function explainAnalyzes(options: Node[] | undefined): boolean {
  let analyze = false;
  for (const o of options ?? []) {
    const d: DefElem | undefined = isObj(o) && 'DefElem' in o ? o.DefElem : undefined;
    if (d?.defname !== 'analyze') continue;
    const arg = d.arg;
    if (!isObj(arg)) analyze = true;
    else if ('String' in arg) analyze = parseBool(arg.String.sval ?? '') ?? true;
    else if ('Integer' in arg) analyze = (arg.Integer.ival ?? 0) !== 0;
    else analyze = true;
  }
  return analyze;
}

/** Records one top-level statement's effects; returns whether it is a write. */
function statement(acc: Acc, stmt: Node | undefined, writeFns: ReadonlySet<string>): boolean {
  if (!isObj(stmt)) return true;
  if ('VariableSetStmt' in stmt) return (variableSet(acc, stmt.VariableSetStmt), true);
  if ('VariableShowStmt' in stmt || 'TransactionStmt' in stmt) return false;
  if ('SelectStmt' in stmt) return walk(acc, stmt, writeFns);
  if ('ExplainStmt' in stmt) {
    const e = stmt.ExplainStmt;
    return explainAnalyzes(e.options) ? statement(acc, e.query, writeFns) : false;
  }
  if ('DiscardStmt' in stmt) {
    if (stmt.DiscardStmt.target === 'DISCARD_ALL') acc.resetAll = true;
  } else if ('ListenStmt' in stmt) acc.pins.add('listen');
  else if ('PrepareStmt' in stmt) acc.pins.add('sql_prepare');
  else if ('DeclareCursorStmt' in stmt && ((stmt.DeclareCursorStmt.options ?? 0) & CURSOR_OPT_HOLD) !== 0) {
    acc.pins.add('with_hold_cursor');
  }
  walk(acc, stmt, writeFns);
  return true;
}

function analyzeUncached(sql: string, writeFns: ReadonlySet<string>): SqlAnalysis {
  const start = skipTrivia(sql, 0);
  if (start >= sql.length) return EMPTY_QUERY; // libpg-query rejects blank input; comments-only parses to []
  let stmts: { stmt?: Node }[];
  try {
    stmts = (parseSync(sql) as { stmts?: { stmt?: Node }[] }).stmts ?? [];
  } catch {
    return UNPARSABLE;
  }
  if (stmts.length === 0) return EMPTY_QUERY;
  const acc: Acc = { sets: new Set(), resets: new Set(), resetAll: false, pins: new Set() };
  let write = false;
  for (const s of stmts) if (statement(acc, s.stmt, writeFns)) write = true;
  const freeze = <T>(s: Set<T>): readonly T[] => (s.size === 0 ? EMPTY : Object.freeze([...s]));
  return result({
    sets: freeze(acc.sets),
    resets: freeze(acc.resets),
    resetAll: acc.resetAll,
    pins: freeze(acc.pins),
    write,
    count: stmts.length,
    unparsable: false,
  });
}

// ---------------------------------------------------------------- analyzer

export class SqlAnalyzer {
  private readonly cache: LRUCache<string, SqlAnalysis>;
  private readonly writeFns: ReadonlySet<string>;

  constructor(opts: SqlAnalyzerOptions = {}) {
    this.cache = new LRUCache<string, SqlAnalysis>({
      max: opts.cacheSize ?? 10_000,
      maxSize: MAX_CACHED_CHARS,
      maxEntrySize: MAX_CACHED_TEXT,
      sizeCalculation: (_v, key) => Math.max(1, key.length),
    });
    const extra = [...(opts.extraWriteFunctions ?? [])].map((f) => f.toLowerCase());
    this.writeFns = new Set([...DEFAULT_WRITE_FUNCTIONS, ...extra]);
  }

  /** Full analysis, cached by exact text (the same frozen object for the same text while cached). */
  analyze(sql: string): SqlAnalysis {
    return this.cached(sql) ?? this.parse(sql);
  }

  /** See sessionEffectsFast: effects without parsing, or null; carries no read/write information. */
  effectsFast(sql: string): SessionEffects | null {
    return sessionEffectsFast(sql);
  }

  /** Session effects, cheapest first: a cached analysis, the fast path (not cached), else parse and cache. */
  effects(sql: string): SessionEffects {
    return this.cached(sql) ?? sessionEffectsFast(sql) ?? this.parse(sql);
  }

  private cached(sql: string): SqlAnalysis | undefined {
    return sql.length <= MAX_CACHED_TEXT ? this.cache.get(sql) : undefined;
  }

  private parse(sql: string): SqlAnalysis {
    if (!ready) throw new Error('SQL analysis used before initSqlAnalysis() resolved (the parser WASM is not loaded)');
    const r = analyzeUncached(sql, this.writeFns);
    if (sql.length <= MAX_CACHED_TEXT) this.cache.set(sql, r);
    return r;
  }

  /** Number of cached texts (for metrics and tests). */
  get cacheEntries(): number {
    return this.cache.size;
  }
}

const defaultAnalyzer = new SqlAnalyzer();

/** Full, cached analysis with the default options; initSqlAnalysis() must have resolved. */
export function analyzeSql(sql: string): SqlAnalysis {
  return defaultAnalyzer.analyze(sql);
}
