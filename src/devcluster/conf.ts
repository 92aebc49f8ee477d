// Rendering postgresql.conf, pg_hba.conf, per-node includes and conninfo strings, with correct quoting.

/** A postgresql.conf string literal: single quotes doubled, backslashes escaped. */
export function confString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A libpq conninfo value: single-quoted, with \ and ' backslash-escaped. */
export function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function conninfo(params: Record<string, string | number>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${conninfoValue(String(v))}`)
    .join(' ');
}

/** The node-specific settings live in this include, so a pg_basebackup copy can simply overwrite it. */
export const NODE_CONF_FILE = 'pgnear.node.conf';

export interface CommonConfInput {
  socketDir: string;
  synchronousCommit: string;
  extraConf: Record<string, string>;
}

function line(key: string, value: string): string {
  // Already-quoted values and bare words/numbers/units pass through; anything else is quoted.
  const verbatim = /^'.*'$/s.test(value) || /^[A-Za-z0-9_.-]+$/.test(value);
  return `${key} = ${verbatim ? value : confString(value)}`;
}

/** Appended to the primary's postgresql.conf before first start; replicas inherit it via pg_basebackup. */
export function renderCommonConf(input: CommonConfInput): string {
  const settings: Array<[string, string]> = [
    ['listen_addresses', "'127.0.0.1'"],
    ['unix_socket_directories', confString(input.socketDir)],
    ['fsync', 'off'],
    ['full_page_writes', 'on'],
    ['synchronous_commit', input.synchronousCommit],
    ['wal_level', 'replica'],
    ['max_wal_senders', '10'],
    ['max_replication_slots', '10'],
    ['hot_standby', 'on'],
    ['hot_standby_feedback', 'on'],
    ['max_connections', '400'],
    ['shared_buffers', '128MB'],
    ['wal_keep_size', '256MB'],
    // Replicas reconnect to a restarted primary within ~0.2 s instead of the default 5 s.
    ['wal_retrieve_retry_interval', "'200ms'"],
    ['password_encryption', "'scram-sha-256'"],
    ['logging_collector', 'off'],
    ['log_line_prefix', "'%m [%p] %q%u@%d/%a '"],
  ];
  const out = ['', '# --- pgnear devcluster ---'];
  for (const [k, v] of settings) out.push(`${k} = ${v}`);
  const extra = Object.entries(input.extraConf);
  if (extra.length > 0) {
    out.push('# extraConf');
    for (const [k, v] of extra) out.push(line(k, v));
  }
  // Last, so the per-node port / delay win over anything above.
  out.push(`include_if_exists = '${NODE_CONF_FILE}'`, '');
  return out.join('\n');
}

export interface NodeConfInput {
  name: string;
  port: number;
  applyDelayMs?: number;
}

export function renderNodeConf(input: NodeConfInput): string {
  const out = [
    `# pgnear devcluster node ${input.name}`,
    `port = ${input.port}`,
    `cluster_name = ${confString(`pgnear-${input.name}`)}`,
  ];
  if (input.applyDelayMs !== undefined) {
    out.push(`recovery_min_apply_delay = '${Math.max(0, Math.round(input.applyDelayMs))}ms'`);
  }
  return `${out.join('\n')}\n`;
}

/** md5 also accepts SCRAM-hashed passwords (the server then runs SCRAM), so both role kinds can log in. */
export function renderHba(): string {
  return [
    '# pgnear devcluster',
    'local all all trust',
    'host all all 127.0.0.1/32 md5',
    'host replication all 127.0.0.1/32 md5',
    '',
  ].join('\n');
}

export interface StandbyConfInput {
  name: string;
  primaryPort: number;
  password: string;
}

/** Replaces what `pg_basebackup -R` wrote: our own application_name and slot, nothing inherited. */
export function renderStandbyAutoConf(input: StandbyConfInput): string {
  const info = conninfo({
    host: '127.0.0.1',
    port: input.primaryPort,
    user: 'postgres',
    password: input.password,
    application_name: input.name,
  });
  return [
    '# Written by pgnear devcluster (replaces pg_basebackup -R output).',
    `primary_conninfo = ${confString(info)}`,
    `primary_slot_name = ${confString(input.name)}`,
    '',
  ].join('\n');
}
