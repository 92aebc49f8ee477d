// Locating the PostgreSQL server binaries and running them (as the `postgres` user when we are root).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterCommandError, PgBinariesMissingError, PostgresUserError } from './errors.js';

const REQUIRED_TOOLS = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup'] as const;
const DEBIAN_VERSIONS = [17, 16, 15, 14] as const;
const INSTALL_HINT =
  'Install them with `apt-get install postgresql-15` (Debian 12) or `apt-get install postgresql`, ' +
  'or point PGNEAR_PG_BIN at a directory containing them.';

function hasServerTools(dir: string): boolean {
  return REQUIRED_TOOLS.every((tool) => existsSync(join(dir, tool)));
}

/** env PGNEAR_PG_BIN, else /usr/lib/postgresql/{17,16,15,14}/bin, else `pg_config --bindir`. */
export function findPgBinDir(): string {
  const fromEnv = process.env.PGNEAR_PG_BIN;
  if (fromEnv) {
    if (hasServerTools(fromEnv)) return fromEnv;
    throw new PgBinariesMissingError(
      `PGNEAR_PG_BIN=${fromEnv} does not contain ${REQUIRED_TOOLS.join(', ')}. ${INSTALL_HINT}`,
    );
  }
  for (const version of DEBIAN_VERSIONS) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (hasServerTools(dir)) return dir;
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (dir && hasServerTools(dir)) return dir;
  } catch {
    // no pg_config on PATH: fall through to the error
  }
  throw new PgBinariesMissingError(
    `PostgreSQL server binaries (${REQUIRED_TOOLS.join(', ')}) not found in ` +
      `/usr/lib/postgresql/{${DEBIAN_VERSIONS.join(',')}}/bin or via pg_config. ${INSTALL_HINT}`,
  );
}

export interface PgUser {
  uid: number;
  gid: number;
}

/** Postgres refuses to run as root: when we are root, everything runs as (and is owned by) `postgres`. */
export function resolveRunAs(): PgUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // fall through to the error
  }
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === 'postgres' && uid !== undefined && gid !== undefined) {
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new PostgresUserError(
    'Running as root, but there is no `postgres` system user to run PostgreSQL as. ' +
      'Installing `postgresql-15` creates it (or: `useradd --system --home /var/lib/postgresql postgres`).',
  );
}

export interface PgExec {
  binDir: string;
  runAs: PgUser | undefined;
  /** Working directory for every tool; must be accessible to the postgres user. */
  cwd: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Appended to the error message on failure (e.g. the tail of a server log). */
  detail?: () => string;
}

/**
 * Inherited PG* variables (PGHOST, PGDATA, PGOPTIONS, ...) would silently change what the tools do, so the
 * child gets our environment minus those, plus exactly what the caller passes.
 */
function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG')) env[k] = v;
  }
  return { ...env, LC_ALL: 'C', ...extra };
}

export function runPgTool(
  exec: PgExec,
  tool: string,
  args: string[],
  opts: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  const toolPath = join(exec.binDir, tool);
  const [file, argv] = exec.runAs ? ['runuser', ['-u', 'postgres', '--', toolPath, ...args]] : [toolPath, args];
  const display = `${tool} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      argv,
      {
        cwd: exec.cwd,
        env: childEnv(opts.env),
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const code = typeof err.code === 'number' ? err.code : null;
        reject(new ClusterCommandError(display, code, stderr || err.message, opts.detail?.()));
      },
    );
  });
}

/** Give a path we created (as root) to the postgres user; a no-op when we are not root. */
export async function chownToPg(exec: PgExec, path: string): Promise<void> {
  if (exec.runAs) await chown(path, exec.runAs.uid, exec.runAs.gid);
}

/** True when the postgres user can create files in `dir` (every parent must be searchable by it). */
export function pgCanWrite(exec: PgExec, dir: string): Promise<boolean> {
  if (!exec.runAs) return Promise.resolve(true);
  return new Promise((resolve) => {
    execFile('runuser', ['-u', 'postgres', '--', 'test', '-w', dir, '-a', '-x', dir], { cwd: '/' }, (err) =>
      resolve(!err),
    );
  });
}
