// Statement fingerprints: a 16-hex hash of the parse tree without constants, parameter numbers and positions.
//
// libpg-query 17 (the npm package) exports no fingerprint, so this is our own. It is compatible in spirit with
// pg_query's fingerprint, not the same values: texts that differ only in constants, $n numbers, whitespace, comments,
// keyword case or unquoted identifier case share a fingerprint; different tables, columns, operators, functions or
// statement shapes do not. Rules:
// - `location`, `stmt_location`, `stmt_len` and the parser `version` are dropped;
// - every A_Const becomes one placeholder whatever its type or value (1, 'x', 1.5, true, NULL, B'1'), every ParamRef
//   another ($1 and $7 match; a constant and a parameter do not);
// - an IN list or ARRAY[…] of constants/parameters (casts looked through) counts as one element, so IN (1, 2, 3)
//   matches IN ($1); consecutive equal VALUES rows collapse, so a multi-row INSERT matches its one-row form.
// The value is stable for a given libpg-query version (it hashes the parser's JSON shape), not across majors. Used by
// operator rules (rules.ts, `fingerprint:`) and to remember statements a replica refused with 25006.
// The parser's WASM must be loaded first: await initSqlAnalysis() (sql-analysis.ts).
import { createHash } from 'node:crypto';
import { parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';

type Obj = Record<string, unknown>;

const DROPPED = new Set(['location', 'stmt_location', 'stmt_len', 'version']);
const MAX_CACHED_TEXT = 16 * 1024;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/** A_Const, ParamRef, or a cast of one. */
function constantLike(v: unknown): boolean {
  if (!isObj(v)) return false;
  if ('A_Const' in v || 'ParamRef' in v) return true;
  return 'TypeCast' in v && isObj(v.TypeCast) && constantLike(v.TypeCast.arg);
}

/** Appends the canonical form of a node to out. */
function canon(v: unknown, out: string[]): void {
  if (Array.isArray(v)) {
    out.push('[');
    for (const e of v) {
      canon(e, out);
      out.push(',');
    }
    out.push(']');
    return;
  }
  if (!isObj(v)) {
    out.push(typeof v === 'string' ? JSON.stringify(v) : String(v));
    return;
  }
  out.push('{');
  for (const key of Object.keys(v)) {
    if (DROPPED.has(key)) continue;
    const child = v[key];
    out.push(key, ':');
    if (key === 'A_Const') out.push('?');
    else if (key === 'ParamRef') out.push('$?');
    else if (
      (key === 'items' || key === 'elements') &&
      Array.isArray(child) &&
      child.length > 0 &&
      child.every(constantLike)
    ) {
      out.push('[?...]'); // List (IN lists, VALUES rows) / A_ArrayExpr of constants
    } else if (key === 'valuesLists' && Array.isArray(child)) {
      out.push('[');
      let prev: string | undefined;
      for (const row of child) {
        const part: string[] = [];
        canon(row, part);
        const s = part.join('');
        if (s !== prev) out.push(s, ',');
        prev = s;
      }
      out.push(']');
    } else canon(child, out);
    out.push(';');
  }
  out.push('}');
}

/** Fingerprint of a parse result (`{ stmts: [...] }` as parseSync returns it). */
export function fingerprintTree(tree: unknown): string {
  const out: string[] = [];
  canon(tree, out);
  return createHash('sha1').update(out.join('')).digest('hex').slice(0, 16);
}

/** The fingerprint format: 16 lower-case hex characters. */
export const FINGERPRINT_FORMAT = /^[0-9a-f]{16}$/;

export interface FingerprinterOptions {
  /** LRU entries keyed by exact text (default 10,000). Texts over 16 Ki chars are never cached. */
  cacheSize?: number;
}

/** Fingerprints cached by exact text; null for unparsable, empty and comment-only texts (also cached). */
export class Fingerprinter {
  private readonly cache: LRUCache<string, { fp: string | null }>;

  constructor(opts: FingerprinterOptions = {}) {
    this.cache = new LRUCache({ max: opts.cacheSize ?? 10_000 });
  }

  fingerprint(sql: string): string | null {
    const hit = sql.length <= MAX_CACHED_TEXT ? this.cache.get(sql) : undefined;
    if (hit !== undefined) return hit.fp;
    const fp = compute(sql);
    if (sql.length <= MAX_CACHED_TEXT) this.cache.set(sql, { fp });
    return fp;
  }

  get cacheEntries(): number {
    return this.cache.size;
  }
}

function compute(sql: string): string | null {
  let tree: { stmts?: unknown[] };
  try {
    tree = parseSync(sql) as { stmts?: unknown[] };
  } catch (e) {
    // libpg-query reports syntax errors as SqlError (with sqlDetails); anything else (WASM not loaded) is ours.
    if (isObj(e) && 'sqlDetails' in e) return null;
    if (/not initialized/i.test(String((e as Error)?.message))) {
      throw new Error('fingerprint used before initSqlAnalysis() resolved (the parser WASM is not loaded)');
    }
    return null;
  }
  if (!tree.stmts || tree.stmts.length === 0) return null;
  try {
    return fingerprintTree(tree);
  } catch {
    return null; // a tree too deep for the recursive walk: no fingerprint rather than a crash
  }
}

const defaultFingerprinter = new Fingerprinter();

/** Fingerprint with the shared default cache; initSqlAnalysis() must have resolved. */
export function fingerprint(sql: string): string | null {
  return defaultFingerprinter.fingerprint(sql);
}
