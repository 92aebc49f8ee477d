// Session settings under transaction pooling: what each client has set, what each server has applied,
// and the SQL that makes a server match a client before it runs the client's next transaction.
import type { ServerConn } from '../pool/server-conn.js';

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

/** Settings a server carries beyond its own startup defaults, as read back from it (name → value). */
const applied = new WeakMap<ServerConn, Map<string, string>>();

export function appliedOn(conn: ServerConn): Map<string, string> {
  let m = applied.get(conn);
  if (!m) {
    m = new Map();
    applied.set(conn, m);
  }
  return m;
}

/** Parse libpq `options` ("-c name=value --name=value", backslash escapes spaces) into settings. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i];
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      has = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i];
    if (w === '-c' && i + 1 < words.length) w = words[++i];
    else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else continue;
    const eq = w.indexOf('=');
    if (eq > 0) out.push([w.slice(0, eq).replace(/-/g, '_').toLowerCase(), w.slice(eq + 1)]);
  }
  return out;
}

/** pgnear.* settings are pgnear's own (routing); servers never get them. */
const isOwn = (name: string): boolean => name.toLowerCase().startsWith('pgnear.');

export const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Clients of one application send the same startup settings: their defaults map is shared (it is never written)
 * rather than built per client (two maps per idle client otherwise). Bounded: cleared when it grows past 256.
 */
const sharedDefaults = new Map<string, ReadonlyMap<string, string>>();
const EMPTY_SETTINGS: ReadonlyMap<string, string> = new Map();

function defaultsOf(startup: Map<string, string>): ReadonlyMap<string, string> {
  // As in Postgres, -c options apply first and startup parameters over them (pgjdbc sends DateStyle=ISO and
  // TimeZone itself; a DateStyle of only a style keeps the order the options gave, as SET DateStyle does).
  const own = new Map<string, string>();
  const opts = startup.get('options');
  if (opts) for (const [k, v] of parseOptions(opts)) if (!isOwn(k)) own.set(k.toLowerCase(), v);
  for (const [k, v] of startup) {
    if (NOT_SETTINGS.has(k) || isOwn(k)) continue;
    const name = k.toLowerCase();
    const before = own.get(name);
    own.set(name, name === 'datestyle' && before !== undefined ? mergeDateStyle(before, v) : v);
  }
  if (own.size === 0) return EMPTY_SETTINGS;
  let key = '';
  for (const [k, v] of own) key += `${k}\0${v}\0`;
  let m = sharedDefaults.get(key);
  if (!m) {
    if (sharedDefaults.size >= 256) sharedDefaults.clear();
    m = own;
    sharedDefaults.set(key, m);
  }
  return m;
}

const DATE_STYLES = new Set(['iso', 'sql', 'postgres', 'german']);
// prettier-ignore
const DATE_ORDERS: Record<string, string> = {
  dmy: 'DMY', euro: 'DMY', european: 'DMY', mdy: 'MDY', us: 'MDY', noneuro: 'MDY', noneuropean: 'MDY', ymd: 'YMD',
};

/** DateStyle `over` set after `base`: each part (output style, field order) it leaves out stays as it was. */
export function mergeDateStyle(base: string, over: string): string {
  const part = (v: string) => {
    let style: string | undefined;
    let order: string | undefined;
    for (const w of v.toLowerCase().split(/[\s,]+/)) {
      if (DATE_STYLES.has(w)) style = w === 'postgres' ? 'Postgres' : w === 'german' ? 'German' : w.toUpperCase();
      else if (DATE_ORDERS[w]) order = DATE_ORDERS[w];
    }
    return { style, order };
  };
  const b = part(base);
  const o = part(over);
  return [o.style ?? b.style, o.order ?? b.order].filter(Boolean).join(', ');
}

export class SessionParams {
  /** The client's session defaults: startup parameters and -c options (shared between clients: never written). */
  private readonly defaults: ReadonlyMap<string, string>;
  /** What the client's session currently has, beyond the server defaults: `defaults` until the first change. */
  private cur: ReadonlyMap<string, string>;
  /** Names the client may have changed on the server it holds; read back before the server is released. */
  get dirty(): Set<string> {
    return (this.dirtySet ??= new Set());
  }
  /** Created on the first SET (memory per idle client). */
  private dirtySet: Set<string> | null = null;
  /** RESET ALL / DISCARD ALL ran: the server is back at its own defaults. */
  resetAll = false;

  constructor(startup: Map<string, string>) {
    this.defaults = defaultsOf(startup);
    this.cur = this.defaults;
  }

  /** Identifies the client's startup settings: equal for clients with the same ones (the interned defaults). */
  get settingsKey(): object {
    return this.defaults;
  }

  /** One current setting (no copy of the shared defaults). */
  get(name: string): string | undefined {
    return this.cur.get(name);
  }

  /** The client's current settings, as a map of its own (copied from the shared defaults on first use). */
  get wanted(): Map<string, string> {
    if (this.cur === this.defaults) this.cur = new Map(this.defaults);
    return this.cur as Map<string, string>;
  }

  /** SQL that makes `conn` carry this client's settings, or null when it already does. */
  syncSql(conn: ServerConn): string | null {
    const have = appliedOn(conn);
    let sets = '';
    let resets = '';
    for (const [k, v] of this.cur) {
      if (have.get(k) !== v)
        sets += `${sets ? ', ' : 'SELECT '}pg_catalog.set_config(${quoteLiteral(k)}, ${quoteLiteral(v)}, false)`;
    }
    for (const k of have.keys()) if (!this.cur.has(k)) resets += `RESET ${quoteIdent(k)}; `;
    if (!sets && !resets) return null;
    return resets + sets;
  }

  /** The sync SQL ran: the server now carries exactly the client's settings. */
  synced(conn: ServerConn): void {
    const have = appliedOn(conn);
    have.clear();
    for (const [k, v] of this.cur) have.set(k, v);
  }

  /** Make `conn` carry this client's settings (one round trip, none when it already does). */
  async syncTo(conn: ServerConn): Promise<void> {
    const sql = this.syncSql(conn);
    if (!sql) return;
    await conn.query(sql);
    this.synced(conn);
  }

  /** The client ran SET / RESET / set_config on the server it holds. */
  noteSet(names: readonly string[]): void {
    for (const n of names) if (!isOwn(n)) this.dirty.add(n);
  }

  noteReset(names: readonly string[], conn: ServerConn): void {
    // RESET returns the server to *its* default, but the client's default may differ (startup parameter):
    // forget the server's value, and mark it dirty so the next sync restores the client's default.
    for (const n of names) {
      const d = this.defaults.get(n);
      if (d === undefined) this.wanted.delete(n);
      else this.wanted.set(n, d);
      appliedOn(conn).delete(n);
      this.dirtySet?.delete(n);
    }
  }

  noteResetAll(conn: ServerConn): void {
    this.cur = this.defaults;
    appliedOn(conn).clear();
    this.dirtySet = null;
  }

  /** Query reading back dirty settings (one column, one row per name, in order), or null. */
  readBackSql(): { sql: string; names: string[] } | null {
    if (!this.dirtySet?.size) return null;
    const names = [...this.dirtySet];
    return {
      sql: `SELECT unnest(ARRAY[${names.map((n) => `pg_catalog.current_setting(${quoteLiteral(n)}, true)`).join(', ')}])`,
      names,
    };
  }

  /** Record read-back values: they are now both what the client has and what the server carries. */
  readBack(conn: ServerConn, names: string[], values: (string | null)[]): void {
    const have = appliedOn(conn);
    names.forEach((n, i) => {
      const v = values[i];
      if (v === null || v === undefined) {
        this.wanted.delete(n);
        have.delete(n);
      } else {
        this.wanted.set(n, v);
        have.set(n, v);
      }
    });
    this.dirtySet = null;
  }
}

function quoteIdent(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join('.');
}
