#!/usr/bin/env -S node --max-semi-space-size=8
// CLI entry: the only place that reads argv, env and signals. Commands: start, dev, check.
// The shebang caps V8's young generation at 16 MB (default 32 MB, which a login storm fills and never gives back):
// −13 MiB RSS with 10,000 idle clients for no measurable CPU per transaction (bench/README.md, "Memory").
import { parseArgs } from 'node:util';
import { type App, startApp } from './app.js';
import { type Config, ConfigError, loadConfigFile, parseConfig } from './config/index.js';
import { startCluster } from './devcluster/cluster.js';
import { createLogger, redactUrl } from './observability/logger.js';

const USAGE = `pgnear — region-aware PostgreSQL proxy

Usage:
  pgnear start [--config FILE] [options]   run the proxy in front of an existing cluster
  pgnear dev [--json] [options]            start a local primary + 2 replicas and pgnear in front of them
  pgnear check --config FILE               validate a config file

Options (each also as an environment variable):
  --listen HOST:PORT        PGNEAR_LISTEN         client listener (default 127.0.0.1:6432)
  --primary [REGION=]URL    PGNEAR_PRIMARY        primary postgres:// URL (its credentials are pgnear's own)
  --replica [REGION=]URL    PGNEAR_REPLICAS       replica, repeatable (env: space-separated)
  --region NAME             PGNEAR_REGION, FLY_REGION   this pgnear's region
  --admin-listen HOST:PORT  PGNEAR_ADMIN_LISTEN   HTTP /metrics and /health
  --pool-mode MODE          PGNEAR_POOL_MODE      session | transaction
  --auth-type TYPE          PGNEAR_AUTH_TYPE      scram-sha-256 | md5 | plain | trust
  --log-level LEVEL         PGNEAR_LOG_LEVEL      trace | debug | info | warn | error
`;

const options = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string' },
  primary: { type: 'string' },
  replica: { type: 'string', multiple: true },
  region: { type: 'string' },
  'admin-listen': { type: 'string' },
  'pool-mode': { type: 'string' },
  'auth-type': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

/** "[REGION=]URL" → node config. */
function nodeArg(s: string): { url: string; region?: string } {
  const m = /^([a-z0-9][a-z0-9-]*)=(postgres(?:ql)?:\/\/.*)$/.exec(s);
  return m ? { region: m[1], url: m[2] } : { url: s };
}

/** Flags win over env, env over the file. */
function overrides(f: Flags, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const pick = (flag: string | undefined, ...envs: string[]) =>
    flag ?? envs.map((e) => env[e]).find((v) => v !== undefined && v !== '');
  const listen = pick(f.listen, 'PGNEAR_LISTEN');
  if (listen) o.listen = listen;
  const primary = pick(f.primary, 'PGNEAR_PRIMARY');
  if (primary) o.primary = nodeArg(primary);
  const replicas = f.replica ?? env.PGNEAR_REPLICAS?.split(/\s+/).filter(Boolean);
  if (replicas?.length) o.replicas = replicas.map(nodeArg);
  const region = pick(f.region, 'PGNEAR_REGION', 'FLY_REGION');
  if (region) o.region = region;
  const admin = pick(f['admin-listen'], 'PGNEAR_ADMIN_LISTEN');
  if (admin) o.admin_listen = admin;
  const mode = pick(f['pool-mode'], 'PGNEAR_POOL_MODE');
  if (mode) o.pool_mode = mode;
  const auth = pick(f['auth-type'], 'PGNEAR_AUTH_TYPE');
  if (auth) o.auth = { type: auth };
  const level = pick(f['log-level'], 'PGNEAR_LOG_LEVEL');
  if (level) o.log = { level };
  return o;
}

function buildConfig(f: Flags, extra: Record<string, unknown> = {}): Config {
  const o = { ...overrides(f, process.env), ...extra };
  return f.config ? loadConfigFile(f.config, o) : parseConfig({}, 'flags and environment', o);
}

/** Resolve on the first SIGINT/SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function cmdStart(f: Flags): Promise<number> {
  const cfg = buildConfig(f);
  const log = createLogger(cfg.log.level, cfg.log.pretty);
  const app = await startApp(cfg, log);
  const sig = await untilSignal();
  log.info({ signal: sig, grace_ms: cfg.limits.shutdown_grace }, 'shutting down: waiting for transactions to finish');
  await app.stop();
  log.info('bye');
  log.flush();
  return 0;
}

async function cmdDev(f: Flags): Promise<number> {
  const json = Boolean(f.json);
  const log = createLogger((f['log-level'] as string) ?? 'info', !json, json ? 2 : 1);
  log.info('starting local cluster: primary (iad) + replicas (ams, syd)');
  const cluster = await startCluster({ replicas: 2, regions: ['iad', 'ams', 'syd'], log: (m) => log.debug(m) });
  let app: App | null = null;
  try {
    const extra: Record<string, unknown> = {
      primary: { url: cluster.primary.url, region: cluster.primary.region, name: cluster.primary.name },
      replicas: cluster.replicas.map((r) => ({ url: r.url, region: r.region, name: r.name })),
      region:
        (f.region as string | undefined) ??
        process.env.PGNEAR_REGION ??
        process.env.FLY_REGION ??
        cluster.primary.region,
      tls: { self_signed: true },
      log: { level: (f['log-level'] as string) ?? 'info', pretty: !json },
    };
    if (!f['admin-listen'] && !process.env.PGNEAR_ADMIN_LISTEN) extra.admin_listen = '127.0.0.1:0';
    const cfg = buildConfig(f, extra);
    app = await startApp(cfg, log);
    const pw = encodeURIComponent(cluster.superuser.password);
    const proxyUrl = `postgres://postgres:${pw}@${app.listen.host}:${app.listen.port}/postgres`;
    const info = {
      database_url: proxyUrl,
      primary: { region: cluster.primary.region, url: cluster.primary.url },
      replicas: cluster.replicas.map((r) => ({ region: r.region, url: r.url })),
      admin_url: app.admin ? `http://${app.admin.host}:${app.admin.port}` : null,
    };
    if (json) process.stdout.write(`${JSON.stringify(info)}\n`);
    else {
      const lines = [
        '',
        'pgnear dev is ready. Connect with:',
        `  export DATABASE_URL='${proxyUrl}'`,
        '  psql "$DATABASE_URL"',
        '',
        `  primary  ${cluster.primary.region}  ${cluster.primary.url}`,
        ...cluster.replicas.map((r) => `  replica  ${r.region}  ${r.url}`),
        info.admin_url ? `  metrics  ${info.admin_url}/metrics` : '',
        '',
        'Ctrl-C stops everything.',
        '',
      ];
      process.stdout.write(lines.join('\n'));
    }
    const sig = await untilSignal();
    log.info({ signal: sig }, 'stopping pgnear and the local cluster');
  } finally {
    await app?.stop(2_000).catch(() => {});
    await cluster.stop();
  }
  log.flush();
  return 0;
}

function cmdCheck(f: Flags): number {
  if (!f.config) {
    process.stderr.write('pgnear check: --config FILE is required\n');
    return 2;
  }
  const cfg = loadConfigFile(f.config, overrides(f, process.env));
  process.stdout.write(
    `${f.config}: OK (listen ${cfg.listen}, primary ${redactUrl(cfg.primary!.url)}, ${cfg.replicas.length} replica(s), pool_mode ${cfg.pool_mode}, auth ${cfg.auth.type})\n`,
  );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`pgnear: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [cmd] = parsed.positionals;
  const f = parsed.values;
  if (f.help || !cmd) {
    process.stdout.write(USAGE);
    return cmd || f.help ? 0 : 2;
  }
  try {
    if (cmd === 'start') return await cmdStart(f);
    if (cmd === 'dev') return await cmdDev(f);
    if (cmd === 'check') return cmdCheck(f);
    process.stderr.write(`pgnear: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`pgnear: ${e.message}\n`);
      return 2;
    }
    const err = e as Error & { code?: string };
    process.stderr.write(`pgnear: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let pino flush, then exit even if a stray handle (e.g. a half-closed socket) lingers.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (e) => {
    process.stderr.write(`pgnear: fatal: ${(e as Error).stack}\n`);
    process.exit(1);
  },
);
