// Short-lived superuser SQL sessions against dev-cluster nodes (via the `pg` driver), plus SQL quoting.
import pg from 'pg';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Standard-conforming string literal (E'' not needed: standard_conforming_strings is on by default). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export interface SqlTarget {
  port: number;
  password: string;
}

export async function withClient<T>(target: SqlTarget, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: target.port,
    user: 'postgres',
    password: target.password,
    database: 'postgres',
    application_name: 'pgnear-devcluster',
    connectionTimeoutMillis: 10_000,
  });
  // A server shutting down under an idle client must not become an unhandled 'error' event.
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
