// One Postgres node of a dev cluster: its identity (port, dirs, URL) and pg_ctl start/stop.
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_CONF_FILE, renderNodeConf } from './conf.js';
import { ClusterCommandError } from './errors.js';
import { chownToPg, type PgExec, runPgTool } from './pgbin.js';
import { freePort } from './ports.js';
import { postmasterPid } from './postmaster.js';

export interface ClusterNode {
  name: string;
  role: 'primary' | 'replica';
  region: string;
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  /** postgres://postgres:<pw>@127.0.0.1:<port>/postgres (password URL-encoded). */
  url: string;
  /** The node's server log (pg_ctl -l). */
  logFile: string;
  /** Postmaster pid (from postmaster.pid) or undefined if down. */
  pid(): number | undefined;
}

export function buildUrl(port: number, user: string, password: string | undefined, database: string): string {
  const auth =
    password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

export interface NodeSpec {
  name: string;
  role: 'primary' | 'replica';
  region: string;
  port: number;
  clusterDir: string;
  superuserPassword: string;
  applyDelayMs?: number;
}

export class PgNode implements ClusterNode {
  readonly name: string;
  readonly role: 'primary' | 'replica';
  readonly region: string;
  readonly host = '127.0.0.1' as const;
  port: number;
  url: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly applyDelayMs: number | undefined;
  readonly #superuserPassword: string;

  constructor(spec: NodeSpec) {
    this.name = spec.name;
    this.role = spec.role;
    this.region = spec.region;
    this.port = spec.port;
    this.dataDir = join(spec.clusterDir, spec.name);
    this.logFile = join(spec.clusterDir, `${spec.name}.log`);
    this.applyDelayMs = spec.applyDelayMs;
    this.#superuserPassword = spec.superuserPassword;
    this.url = buildUrl(this.port, 'postgres', this.#superuserPassword, 'postgres');
  }

  pid = (): number | undefined => postmasterPid(this.dataDir);

  /** Only before the cluster is handed out: a port change after that would break every URL a caller holds. */
  setPort(port: number): void {
    this.port = port;
    this.url = buildUrl(port, 'postgres', this.#superuserPassword, 'postgres');
  }

  toJSON(): Record<string, unknown> {
    const { name, role, region, host, port, dataDir, logFile } = this;
    return { name, role, region, host, port, dataDir, logFile, url: this.url, pid: this.pid() };
  }
}

export async function writeNodeConf(exec: PgExec, node: PgNode): Promise<void> {
  const path = join(node.dataDir, NODE_CONF_FILE);
  await writeFile(path, renderNodeConf({ name: node.name, port: node.port, applyDelayMs: node.applyDelayMs }), {
    mode: 0o600,
  });
  await chownToPg(exec, path);
}

/** The last `lines` lines of a log file (reads at most the last 16 KiB). */
export async function tailFile(path: string, lines = 25): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    const { size } = await handle.stat();
    const length = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return buf
      .toString('utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '(no log)';
  } finally {
    await handle?.close();
  }
}

/** `pg_ctl -w -t 60 start`; on failure the error carries the tail of the node's log. */
export async function startPgNode(exec: PgExec, node: PgNode): Promise<void> {
  if (node.pid() !== undefined) return;
  try {
    await runPgTool(exec, 'pg_ctl', ['-w', '-t', '60', '-D', node.dataDir, '-l', node.logFile, 'start'], {
      timeoutMs: 75_000,
    });
  } catch (err) {
    if (!(err instanceof ClusterCommandError)) throw err;
    const tail = await tailFile(node.logFile);
    throw new ClusterCommandError(
      err.command,
      err.exitCode,
      err.stderr,
      `${node.name} log (${node.logFile}), last lines:\n${tail}`,
    );
  }
}

/**
 * First start only: a port we probed as free may have been taken since (another process, or an outgoing
 * connection's ephemeral source port). Retry such bind failures with a fresh port.
 */
export async function startWithPortRetry(exec: PgExec, node: PgNode, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await startPgNode(exec, node);
      return;
    } catch (err) {
      const tail = await tailFile(node.logFile, 10);
      const bindFailure = /Address already in use|could not create any TCP\/IP sockets/.test(tail);
      if (!bindFailure || attempt >= attempts) throw err;
      node.setPort(await freePort());
      await writeNodeConf(exec, node);
    }
  }
}

/** `pg_ctl stop -m <mode>`; a node that is already down is a no-op. */
export async function stopPgNode(
  exec: PgExec,
  node: PgNode,
  mode: 'fast' | 'immediate',
  timeoutSec = 60,
): Promise<void> {
  if (node.pid() === undefined) return;
  try {
    await runPgTool(exec, 'pg_ctl', ['-w', '-t', String(timeoutSec), '-D', node.dataDir, '-m', mode, 'stop'], {
      timeoutMs: (timeoutSec + 15) * 1000,
    });
  } catch (err) {
    if (node.pid() === undefined) return; // it went down anyway (raced with another stop)
    throw err;
  }
}
