// Operator routing rules from config: match on user, database, application_name, SQL regex or fingerprint; first wins.
//
// A rule's conditions are ANDed; a rule without conditions matches everything (a default). user, database and
// application_name compare exactly (role and database names are case-sensitive in Postgres). `pattern` is a regex
// source compiled once, case-insensitive, tested (unanchored) against the whole SQL text; it comes from the operator's
// config, so its cost is the operator's. `fingerprint` is a 16-hex value from fingerprint.ts (case-insensitive); the
// caller may pass the statement's fingerprint lazily so it is computed only when a rule reaches that test.
// Conditions are tested cheapest first: names, fingerprint (cached), pattern.
import { FINGERPRINT_FORMAT } from './fingerprint.js';
import type { Consistency } from './router.js';

export type RuleRoute = 'primary' | 'replica' | 'auto';

export interface RuleMatch {
  user?: string;
  database?: string;
  application_name?: string;
  /** Regex source, case-insensitive, tested against the SQL text. */
  pattern?: string;
  /** 16-hex statement fingerprint (fingerprint.ts). */
  fingerprint?: string;
}

export interface RoutingRule {
  match: RuleMatch;
  route: RuleRoute;
  consistency?: Consistency;
}

export interface CompiledRule {
  readonly index: number;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
  readonly pattern?: RegExp;
  readonly fingerprint?: string;
  readonly route: RuleRoute;
  readonly consistency?: Consistency;
}

export type CompiledRules = readonly CompiledRule[];

export interface RuleContext {
  user: string;
  database: string;
  applicationName?: string;
  sql: string;
  /** The statement's fingerprint, or a function computing it (called at most once per matchRule); null if none. */
  fingerprint?: string | null | (() => string | null);
}

export interface RuleDecision {
  route: RuleRoute;
  consistency?: Consistency;
  /** Position of the matching rule in the configured list. */
  index: number;
}

const ROUTES: readonly string[] = ['primary', 'replica', 'auto'];
const CONSISTENCIES: readonly string[] = ['session', 'global', 'token', 'eventual'];
const MATCH_KEYS = new Set(['user', 'database', 'application_name', 'pattern', 'fingerprint']);

function optionalString(i: number, key: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`routing rule ${i}: match.${key} must be a string`);
  return v;
}

/** Validates and compiles rules once; throws an Error naming the rule (index from 0) on anything invalid. */
export function compileRules(list: readonly RoutingRule[]): CompiledRules {
  return Object.freeze(
    list.map((rule, i): CompiledRule => {
      if (typeof rule !== 'object' || rule === null) throw new Error(`routing rule ${i}: must be an object`);
      if (!ROUTES.includes(rule.route)) {
        throw new Error(`routing rule ${i}: route must be one of ${ROUTES.join(', ')}, got ${String(rule.route)}`);
      }
      if (rule.consistency !== undefined && !CONSISTENCIES.includes(rule.consistency)) {
        throw new Error(
          `routing rule ${i}: consistency must be one of ${CONSISTENCIES.join(', ')}, got ${String(rule.consistency)}`,
        );
      }
      const m = rule.match ?? {};
      if (typeof m !== 'object' || m === null) throw new Error(`routing rule ${i}: match must be an object`);
      for (const k of Object.keys(m)) {
        if (!MATCH_KEYS.has(k)) throw new Error(`routing rule ${i}: unknown match key "${k}"`);
      }
      const out: {
        -readonly [K in keyof CompiledRule]: CompiledRule[K];
      } = { index: i, route: rule.route };
      const user = optionalString(i, 'user', m.user);
      const database = optionalString(i, 'database', m.database);
      const app = optionalString(i, 'application_name', m.application_name);
      const pattern = optionalString(i, 'pattern', m.pattern);
      const fp = optionalString(i, 'fingerprint', m.fingerprint);
      if (user !== undefined) out.user = user;
      if (database !== undefined) out.database = database;
      if (app !== undefined) out.applicationName = app;
      if (pattern !== undefined) {
        try {
          out.pattern = new RegExp(pattern, 'i');
        } catch (e) {
          throw new Error(`routing rule ${i}: invalid pattern /${pattern}/: ${(e as Error).message}`);
        }
      }
      if (fp !== undefined) {
        const lower = fp.toLowerCase();
        if (!FINGERPRINT_FORMAT.test(lower)) {
          throw new Error(`routing rule ${i}: fingerprint must be 16 hex characters, got "${fp}"`);
        }
        out.fingerprint = lower;
      }
      if (rule.consistency !== undefined) out.consistency = rule.consistency;
      return Object.freeze(out);
    }),
  );
}

/** The first rule matching ctx, or null. */
export function matchRule(compiled: CompiledRules, ctx: RuleContext): RuleDecision | null {
  let fp: string | null | undefined = typeof ctx.fingerprint === 'function' ? undefined : (ctx.fingerprint ?? null);
  for (const r of compiled) {
    if (r.user !== undefined && r.user !== ctx.user) continue;
    if (r.database !== undefined && r.database !== ctx.database) continue;
    if (r.applicationName !== undefined && r.applicationName !== ctx.applicationName) continue;
    if (r.fingerprint !== undefined) {
      if (fp === undefined) fp = (ctx.fingerprint as () => string | null)();
      if (fp === null || r.fingerprint !== fp.toLowerCase()) continue;
    }
    if (r.pattern !== undefined && !r.pattern.test(ctx.sql)) continue;
    return r.consistency === undefined
      ? { route: r.route, index: r.index }
      : { route: r.route, consistency: r.consistency, index: r.index };
  }
  return null;
}
