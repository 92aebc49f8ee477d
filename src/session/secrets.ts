// Where a role's secret comes from: the config's users, else auth_query against the primary (briefly cached).
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { isMd5Hash } from '../protocol/auth/md5.js';
import { parseScramVerifier, type ScramSecret, scramSecretFromPassword } from '../protocol/auth/scram.js';

export type StoredSecret =
  | { kind: 'plain'; password: string; scram: ScramSecret }
  | { kind: 'scram'; secret: ScramSecret }
  | { kind: 'md5'; hash: string }
  /** The role exists but has no password (only trust can log it in). */
  | { kind: 'none' };

/** Interpret a configured or stored password string. */
export function toStoredSecret(password: string): StoredSecret {
  const scram = parseScramVerifier(password);
  if (scram) return { kind: 'scram', secret: scram };
  if (isMd5Hash(password)) return { kind: 'md5', hash: password };
  return { kind: 'plain', password, scram: scramSecretFromPassword(password) };
}

export class SecretLookupError extends Error {
  readonly code = 'PGNEAR_E_AUTH_QUERY';
}

export interface SecretSource {
  /** The role's secret; null when the role is unknown. */
  lookup(user: string): Promise<StoredSecret | null>;
  /** Drop a cached secret (e.g. after a server rejected it). */
  invalidate(user: string): void;
  close(): Promise<void>;
}

export interface AuthQueryOptions {
  /** Connection string of the primary with pgnear's own credentials. */
  url: string;
  database?: string;
  query: string;
  cacheTtlMs?: number;
}

/** Configured users win; other roles are looked up with auth_query when one is available. */
export class Secrets implements SecretSource {
  private readonly fixed = new Map<string, StoredSecret | null>();
  private readonly cache: LRUCache<string, { s: StoredSecret | null }>;
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;

  constructor(
    users: { name: string; password?: string }[],
    private readonly authQuery: AuthQueryOptions | null,
  ) {
    for (const u of users) this.fixed.set(u.name, u.password ? toStoredSecret(u.password) : { kind: 'none' });
    this.cache = new LRUCache({ max: 10_000, ttl: authQuery?.cacheTtlMs ?? 5_000 });
  }

  /** Lookups in flight per role: a login storm for one role costs one query, not one per client. */
  private readonly inflight = new Map<string, Promise<StoredSecret | null>>();

  async lookup(user: string): Promise<StoredSecret | null> {
    if (this.fixed.has(user)) return this.fixed.get(user) ?? null;
    if (!this.authQuery) return null;
    const hit = this.cache.get(user);
    if (hit) return hit.s;
    let p = this.inflight.get(user);
    if (!p) {
      p = this.query(user).finally(() => this.inflight.delete(user));
      this.inflight.set(user, p);
    }
    return p;
  }

  /** One auth_query at a time on the shared connection (pg would queue them anyway, with a warning). */
  private queue: Promise<unknown> = Promise.resolve();

  private query(user: string): Promise<StoredSecret | null> {
    const run = this.queue.then(() => this.runQuery(user));
    this.queue = run.catch(() => {});
    return run;
  }

  private async runQuery(user: string): Promise<StoredSecret | null> {
    const client = await this.connect();
    let rows: { passwd?: string | null }[];
    try {
      rows = (await client.query(this.authQuery!.query, [user])).rows;
    } catch (e) {
      this.drop(client);
      throw new SecretLookupError(`auth_query failed: ${(e as Error).message}`);
    }
    const pw = rows[0]?.passwd;
    const s: StoredSecret | null = rows.length === 0 ? null : pw ? toStoredSecret(pw) : { kind: 'none' };
    this.cache.set(user, { s });
    return s;
  }

  invalidate(user: string): void {
    this.cache.delete(user);
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const aq = this.authQuery!;
    const c = new pg.Client({ connectionString: aq.url, database: aq.database, application_name: 'pgnear auth_query' });
    c.on('error', () => this.drop(c));
    this.connecting = c
      .connect()
      .then(() => {
        this.client = c;
        return c;
      })
      .catch((e: Error) => {
        throw new SecretLookupError(`auth_query cannot connect to the primary: ${e.message}`);
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  private drop(c: pg.Client): void {
    if (this.client === c) this.client = null;
    c.end().catch(() => {});
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}
