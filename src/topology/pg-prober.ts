// The real prober: persistent `pg` connections per node (probe + lazily a wait channel), reconnect backoff, SQL.
import pg from 'pg';
import { formatLsn, parseLsn } from './lsn.js';
import type { NodeSpec, ProbeResult, Prober } from './types.js';

/** One query per tick: role, LSN, replay age, WAL sender, own port, system identifier, timeline. */
export const PROBE_SQL = `select pg_is_in_recovery() as in_recovery,
  (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_insert_lsn() end)::text as lsn,
  (extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8 as replay_age_ms,
  (select sender_host from pg_stat_wal_receiver limit 1) as sender_host,
  (select sender_port from pg_stat_wal_receiver limit 1) as sender_port,
  inet_server_port() as server_port,
  (select system_identifier::text from pg_control_system()) as system_id,
  (case when pg_is_in_recovery() then null
        else substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8) end) as timeline`;

export const REPLAY_SQL = 'select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() end)::text as lsn';

const NOTICE_PREFIX = 'pgnear_replay=';

/**
 * A server-side wait until the replay position reaches the target (with lsnCaughtUp's page-header tolerance).
 * COMMIT per iteration releases the snapshot so the loop never holds back (or conflicts with) the replay it
 * waits for; INFO reaches the client whatever client_min_messages says. A DO block cannot return rows, hence
 * the notice ('' when the node is not in recovery). With `failOnTimeout` it raises an error instead when the
 * target was not reached, so a caller reading rows only (a session borrowing the replica) gets its answer too.
 */
export function waitSql(lsn: bigint, timeoutMs: number, commit = true, failOnTimeout = false): string {
  const ms = Math.max(0, Math.ceil(timeoutMs));
  return `DO $pgnear$
DECLARE
  target pg_lsn := '${formatLsn(lsn)}';
  deadline timestamptz := clock_timestamp() + interval '${ms} milliseconds';
  r pg_lsn;
BEGIN
  LOOP
    r := pg_last_wal_replay_lsn();
    EXIT WHEN r IS NULL OR NOT pg_is_in_recovery() OR r >= target
      OR ((r - '0/0'::pg_lsn) % 8192 = 0 AND target - r <= 40)
      OR clock_timestamp() >= deadline;
    PERFORM pg_sleep(0.001);${commit ? '\n    COMMIT;' : ''}
  END LOOP;${
    failOnTimeout
      ? `
  IF r IS NULL OR NOT pg_is_in_recovery() OR NOT (r >= target OR ((r - '0/0'::pg_lsn) % 8192 = 0 AND target - r <= 40)) THEN
    RAISE EXCEPTION 'pgnear: replay did not reach % within ${ms} ms', target;
  END IF;`
      : ''
  }
  RAISE INFO '${NOTICE_PREFIX}%', coalesce(case when pg_is_in_recovery() then pg_last_wal_replay_lsn() end::text, '');
END
$pgnear$`;
}

interface ProbeRow {
  in_recovery: boolean;
  lsn: string | null;
  replay_age_ms: number | null;
  sender_host: string | null;
  sender_port: number | null;
  server_port: number | null;
  system_id: string | null;
  timeline: string | null;
}

export function probeResultFromRow(row: ProbeRow): ProbeResult {
  return {
    inRecovery: row.in_recovery,
    lsn: row.lsn === null ? null : parseLsn(row.lsn),
    replayAgeMs: row.replay_age_ms === null ? null : Number(row.replay_age_ms),
    senderHost: row.sender_host,
    senderPort: row.sender_port === null ? null : Number(row.sender_port),
    serverPort: row.server_port === null ? null : Number(row.server_port),
    systemId: row.system_id,
    timeline: row.timeline === null ? null : parseInt(row.timeline, 16),
  };
}

export interface PgProberOptions {
  /** connect timeout, and the bound on closing a connection. Default 2000. */
  timeoutMs?: number;
  /** Default 'pgnear-monitor' (a URL's own application_name wins). */
  applicationName?: string;
  /** Reconnect backoff bounds. Defaults 100 and 2000 ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Channel {
  client: pg.Client | null;
  connecting: Promise<pg.Client> | null;
  backoffMs: number;
  retryAt: number;
  lastError: string;
  /** Latest "pgnear_replay=" notice ('' = not in recovery). */
  notice: string | undefined;
  /** The server refused COMMIT inside DO (e.g. an old version): wait without it. */
  noCommit: boolean;
}

export class PgProber implements Prober {
  readonly #timeoutMs: number;
  readonly #appName: string;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #channels = new Map<string, Channel>();
  #closed = false;

  constructor(opts: PgProberOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#appName = opts.applicationName ?? 'pgnear-monitor';
    this.#minBackoff = opts.minBackoffMs ?? 100;
    this.#maxBackoff = opts.maxBackoffMs ?? 2000;
  }

  async probe(node: NodeSpec): Promise<ProbeResult> {
    const client = await this.#client(node, 'probe');
    const { rows } = await client.query<ProbeRow>(PROBE_SQL);
    if (!rows[0]) throw new Error('probe returned no row');
    return probeResultFromRow(rows[0]);
  }

  async replayLsn(node: NodeSpec): Promise<bigint | null> {
    const client = await this.#client(node, 'probe');
    const { rows } = await client.query<{ lsn: string | null }>(REPLAY_SQL);
    const text = rows[0]?.lsn ?? null;
    return text === null ? null : parseLsn(text);
  }

  async waitReplay(node: NodeSpec, lsn: bigint, timeoutMs: number): Promise<bigint | null> {
    const client = await this.#client(node, 'wait');
    const ch = this.#channel(node.name, 'wait');
    ch.notice = undefined;
    try {
      await client.query(waitSql(lsn, timeoutMs, !ch.noCommit));
    } catch (err) {
      // 2D000 invalid_transaction_termination: COMMIT not allowed here; fall back to a snapshot-holding loop.
      if ((err as { code?: string }).code !== '2D000' || ch.noCommit) throw err;
      ch.noCommit = true;
      await client.query(waitSql(lsn, timeoutMs, false));
    }
    const text = ch.notice;
    if (text === undefined) throw new Error('replay wait returned no result');
    return text === '' ? null : parseLsn(text);
  }

  reset(node: string, channel: 'probe' | 'wait'): void {
    const ch = this.#channels.get(`${node}/${channel}`);
    if (ch?.client) this.#drop(ch, ch.client, `${channel} timed out`);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const clients: pg.Client[] = [];
    const pending: Array<Promise<unknown>> = [];
    for (const ch of this.#channels.values()) {
      if (ch.client) clients.push(ch.client);
      ch.client = null;
      // A connect in progress is ended by #connect itself once it settles.
      if (ch.connecting) pending.push(ch.connecting.catch(() => {}));
    }
    await Promise.all([...clients.map((c) => this.#end(c)), ...pending]);
  }

  #channel(node: string, kind: 'probe' | 'wait'): Channel {
    const key = `${node}/${kind}`;
    let ch = this.#channels.get(key);
    if (!ch) {
      ch = {
        client: null,
        connecting: null,
        backoffMs: 0,
        retryAt: 0,
        lastError: '',
        notice: undefined,
        noCommit: false,
      };
      this.#channels.set(key, ch);
    }
    return ch;
  }

  async #client(node: NodeSpec, kind: 'probe' | 'wait'): Promise<pg.Client> {
    if (this.#closed) throw new Error('prober closed');
    const ch = this.#channel(node.name, kind);
    if (ch.client) return ch.client;
    if (ch.connecting) return ch.connecting;
    const wait = ch.retryAt - Date.now();
    if (wait > 0) throw new Error(`reconnecting in ${wait} ms (last error: ${ch.lastError})`);
    ch.connecting = this.#connect(node, ch).finally(() => {
      ch.connecting = null;
    });
    return ch.connecting;
  }

  async #connect(node: NodeSpec, ch: Channel): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: node.url,
      application_name: this.#appName,
      connectionTimeoutMillis: this.#timeoutMs,
      keepAlive: true,
    });
    client.on('error', (err) => this.#drop(ch, client, err.message));
    client.on('end', () => this.#drop(ch, client, 'connection closed'));
    client.on('notice', (n) => {
      if (n.message?.startsWith(NOTICE_PREFIX)) ch.notice = n.message.slice(NOTICE_PREFIX.length);
    });
    try {
      await client.connect();
    } catch (err) {
      this.#backoff(ch, (err as Error).message);
      void this.#end(client);
      throw err;
    }
    if (this.#closed) {
      await this.#end(client);
      throw new Error('prober closed');
    }
    ch.client = client;
    ch.backoffMs = 0;
    return client;
  }

  #backoff(ch: Channel, reason: string): void {
    ch.backoffMs = Math.min(this.#maxBackoff, Math.max(this.#minBackoff, ch.backoffMs * 2));
    ch.retryAt = Date.now() + ch.backoffMs;
    ch.lastError = reason;
  }

  #drop(ch: Channel, client: pg.Client, reason: string): void {
    if (ch.client !== client) return;
    ch.client = null;
    this.#backoff(ch, reason);
    void this.#end(client);
  }

  /** Graceful end (Terminate), then destroy the socket if the server does not answer in time. */
  async #end(client: pg.Client): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#timeoutMs);
    });
    try {
      await Promise.race([client.end().catch(() => {}), timeout]);
    } finally {
      clearTimeout(timer);
      client.connection?.stream?.destroy();
    }
  }
}
