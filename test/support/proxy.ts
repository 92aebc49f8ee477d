// Starts pgnear for tests: in-process (fast, for behaviour) or as a child process (for RSS and signals).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { stringify } from 'yaml';
import { type App, startApp } from '../../src/app.js';
import { type ConfigInput, parseConfig } from '../../src/config/index.js';
import type { LocalCluster } from '../../src/devcluster/cluster.js';

export interface TestProxy {
  app: App;
  port: number;
  /** Client URL through pgnear for a user (default: the cluster superuser). */
  url(user?: string, password?: string, database?: string, query?: string): string;
  /** Structured log lines emitted so far. */
  logs: Record<string, unknown>[];
  logContains(re: RegExp): boolean;
  stop(graceMs?: number): Promise<void>;
}

/** Config pointing at the cluster (primary + replicas), listening on a free port; `extra` merges over it. */
export function clusterConfig(cluster: LocalCluster, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    listen: '127.0.0.1:0',
    primary: { url: cluster.primary.url, region: cluster.primary.region, name: cluster.primary.name },
    replicas: cluster.replicas.map((r) => ({ url: r.url, region: r.region, name: r.name })),
    // Suites that are not about routing set up data on the primary directly and read it through pgnear at once:
    // they run with routing off unless they configure it (the routing-* suites always do).
    routing: { enabled: false },
    ...extra,
  } as ConfigInput;
}

function urlFor(port: number, user: string, password: string | undefined, database: string, query = ''): string {
  const auth =
    password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@127.0.0.1:${port}/${encodeURIComponent(database)}${query ? `?${query}` : ''}`;
}

export async function startProxy(cluster: LocalCluster, extra: Partial<ConfigInput> = {}): Promise<TestProxy> {
  const cfg = parseConfig(clusterConfig(cluster, extra), 'test');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const log = pino({ level: process.env.PGNEAR_TEST_LOG ?? 'debug' }, sink);
  const app = await startApp(cfg, log);
  const su = cluster.superuser;
  return {
    app,
    port: app.listen.port,
    url: (user = su.user, password = user === su.user ? su.password : undefined, database = 'postgres', query = '') =>
      urlFor(app.listen.port, user, password, database, query),
    logs,
    logContains: (re) => logs.some((l) => re.test(JSON.stringify(l))),
    stop: (graceMs = 1000) => app.stop(graceMs),
  };
}

export interface ProxyProcess {
  child: ChildProcess;
  port: number;
  url(user?: string, password?: string, database?: string): string;
  /** Resident set size of the pgnear process in bytes (from /proc). */
  rss(): number;
  stdout: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Run the built CLI (`dist/main.js start --config …`) as a child process; needs `npm run build` first. */
export async function startProxyProcess(
  cluster: LocalCluster,
  extra: Partial<ConfigInput> = {},
): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'pgnear-test-'));
  const file = join(dir, 'pgnear.yaml');
  writeFileSync(file, stringify(clusterConfig(cluster, extra)));
  const main = resolve(import.meta.dirname, '../../dist/main.js');
  const child = spawn(process.execPath, [main, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stdout: string[] = [];
  const port = await new Promise<number>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`pgnear did not start: ${stdout.join('\n')}`)), 20_000);
    let buf = '';
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        stdout.push(line);
        const m = /"listen":"[^"]*:(\d+)"/.exec(line);
        if (m) {
          clearTimeout(t);
          res(Number(m[1]));
        }
        i = buf.indexOf('\n');
      }
    });
    child.once('exit', (code) => rej(new Error(`pgnear exited with ${code}: ${stdout.join('\n')}`)));
  });
  const su = cluster.superuser;
  return {
    child,
    port,
    url: (user = su.user, password = user === su.user ? su.password : undefined, database = 'postgres') =>
      urlFor(port, user, password, database),
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
    },
    stdout,
    stop: (signal = 'SIGTERM') =>
      new Promise((res) => {
        if (child.exitCode !== null) return res(child.exitCode);
        child.once('exit', (code) => res(code));
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }),
  };
}
