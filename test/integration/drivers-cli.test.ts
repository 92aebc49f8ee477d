// libpq clients through pgnear: psql (errors, \copy of 100k rows both ways, TLS), pgbench in all three query
// modes, and psycopg2 (parameters, copy_expert both ways, named cursors, cancel).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { run } from '../support/drivers.js';
import { startProxy, type TestProxy } from '../support/proxy.js';

const cluster = useCluster({ replicas: 1 });
let proxy: TestProxy;
let tlsProxy: TestProxy | undefined;
let tlsRequiredProxy: TestProxy | undefined;
const dir = mkdtempSync(join(tmpdir(), 'pgnear-cli-'));

beforeAll(async () => {
  proxy = await startProxy(cluster());
});
afterAll(async () => {
  await Promise.allSettled([proxy?.stop(), tlsProxy?.stop(), tlsRequiredProxy?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const PYTHON = '/usr/bin/python3';
const psql = (url: string, ...args: string[]) => run('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-At', ...args]);
const withQuery = (url: string, q: string) => `${url}${url.includes('?') ? '&' : '?'}${q}`;

describe('psql through pgnear', () => {
  it('runs queries and reports startup parameters (application_name=psql)', async () => {
    const r = await psql(
      proxy.url(),
      '-c',
      "select current_setting('application_name'), inet_server_port(), pg_is_in_recovery()",
      '-c',
      'select sum(g) from generate_series(1, 1000) g',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`psql|${cluster().primary.port}|f\n500500\n`);
  });

  it('fails exactly like a direct connection: -c error exit 1, script error with ON_ERROR_STOP exit 3', async () => {
    const script = join(dir, 'err.sql');
    writeFileSync(script, "begin;\nselect 'one';\nselect 1/0;\nselect 'never';\ncommit;\n");
    for (const args of [
      ['-c', 'select 1/0'],
      ['-f', script],
    ]) {
      const direct = await psql(cluster().primary.url, ...args);
      const proxied = await psql(proxy.url(), ...args);
      expect({
        code: proxied.code,
        stdout: proxied.stdout,
        stderr: proxied.stderr.replace(/^psql:[^:]+:/gm, ''),
      }).toEqual({ code: direct.code, stdout: direct.stdout, stderr: direct.stderr.replace(/^psql:[^:]+:/gm, '') });
      expect(proxied.stderr).toContain('ERROR:  division by zero');
    }
    const codes = await Promise.all([psql(proxy.url(), '-c', 'select 1/0'), psql(proxy.url(), '-f', script)]);
    expect(codes.map((r) => r.code)).toEqual([1, 3]);
  });

  it('\\copy 100,000 rows in from a file and out to a file, byte-identical', async () => {
    const n = 100_000;
    const input = join(dir, 'in.tsv');
    const output = join(dir, 'out.tsv');
    let text = '';
    for (let i = 1; i <= n; i++) text += `${i}\trow ${i} with tab\\tand backslash\\\\\n`;
    writeFileSync(input, text);
    const r = await psql(
      proxy.url(),
      '-c',
      'create table cli_copy(a int primary key, b text)',
      '-c',
      `\\copy cli_copy from '${input}'`,
      '-c',
      'select count(*), sum(a) from cli_copy',
      '-c',
      `\\copy (select a, b from cli_copy order by a) to '${output}'`,
      '-c',
      'drop table cli_copy',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`CREATE TABLE\nCOPY ${n}\n${n}|${(n * (n + 1)) / 2}\nCOPY ${n}\nDROP TABLE\n`);
    expect(readFileSync(output, 'utf8') === text).toBe(true);
  });
});

describe('pgbench through pgnear', () => {
  it('initializes scale 1 (COPY, vacuum, primary keys)', async () => {
    const r = await run('pgbench', ['-i', '-s', '1', '-q', proxy.url()], { timeoutMs: 60_000 });
    expect(r.stderr).toMatch(/done in/);
    expect(r.code).toBe(0);
    const count = await psql(proxy.url(), '-c', 'select count(*) from pgbench_accounts');
    expect(count.stdout).toBe('100000\n');
  });

  for (const mode of ['simple', 'extended', 'prepared']) {
    it(`runs -S -c 8 -T 3 in -M ${mode} with no failed transactions`, async () => {
      const r = await run('pgbench', ['-S', '-c', '8', '-j', '2', '-T', '3', '-M', mode, '-n', proxy.url()], {
        timeoutMs: 30_000,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`query mode: ${mode}`);
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
      const failed = /number of failed transactions: (\d+)/.exec(r.stdout)?.[1];
      expect(processed).toBeGreaterThan(0);
      expect(failed).toBe('0');
      expect(r.stderr).not.toMatch(/error|abort/i);
    });
  }
  it('survives connection churn: tpcb-like -C (reconnect per transaction) in -M prepared, 0 failed', async () => {
    // Every transaction logs in anew and PREPAREs its statements again on a pooled server: the reset between
    // clients must drop the previous client's prepared statements, or PREPARE fails with 42P05.
    const r = await run('pgbench', ['-C', '-c', '4', '-j', '2', '-T', '3', '-M', 'prepared', '-n', proxy.url()], {
      timeoutMs: 30_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
    expect(processed).toBeGreaterThan(0);
    expect(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1]).toBe('0');
    expect(r.stderr).not.toMatch(/error|abort/i);
  });
});

describe('psycopg2 through pgnear', () => {
  it('connects, runs parameterized queries, copy_expert both ways, named cursors and cancel()', async () => {
    const script = String.raw`
import io, json, os, threading, time
import psycopg2, psycopg2.errors
dsn = os.environ['DSN']
out = {}
conn = psycopg2.connect(dsn)
cur = conn.cursor()
cur.execute("select %s::int + %s::int, %s::text, %s is null, %s::bytea", (40, 2, "it's \"quoted\" \\ ✓", None, psycopg2.Binary(b'\x00\xff\x01')))
row = cur.fetchone()
out['params'] = [row[0], row[1], row[2], bytes(row[3]).hex()]
cur.execute("create temp table py_copy(a int, b text)")
n = 100000
cur.copy_expert("copy py_copy from stdin", io.StringIO(''.join('%d\tpy-%d\n' % (i, i) for i in range(1, n + 1))))
out['copied_in'] = cur.rowcount
cur.execute("select count(*), sum(a) from py_copy")
out['stats'] = [int(x) for x in cur.fetchone()]
buf = io.StringIO()
cur.copy_expert("copy (select a, b from py_copy order by a) to stdout", buf)
lines = buf.getvalue().splitlines()
out['copied_out'] = [len(lines), lines[0], lines[-1], all(l == '%d\tpy-%d' % (i + 1, i + 1) for i, l in enumerate(lines))]
conn.commit()
try:
    cur.execute("select 1/0")
except psycopg2.errors.DivisionByZero as e:
    out['error'] = e.pgcode
conn.rollback()
with conn.cursor(name='srv') as sc:
    sc.itersize = 700
    sc.execute("select g from generate_series(1, 5000) g")
    out['named_cursor'] = sum(r[0] for r in sc)
conn.commit()

conn.autocommit = True
mon = psycopg2.connect(dsn)
mon.autocommit = True
result = {}
def worker():
    try:
        conn.cursor().execute("select pg_sleep(30)")
        result['cancel'] = 'completed'
    except psycopg2.errors.QueryCanceled as e:
        result['cancel'] = e.pgcode
t0 = time.time()
th = threading.Thread(target=worker)
th.start()
mc = mon.cursor()
deadline = time.time() + 10
while time.time() < deadline:
    mc.execute("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")
    if mc.fetchone()[0] > 0:
        break
    time.sleep(0.02)
conn.cancel()
th.join(20)
out['cancel'] = [result.get('cancel'), time.time() - t0 < 10]
cur = conn.cursor()
cur.execute("select 'alive'")
out['after_cancel'] = cur.fetchone()[0]
mon.close()
conn.close()
print(json.dumps(out))
`;
    const probe = await run(PYTHON, ['-c', 'import psycopg2']);
    expect(probe.code, `psycopg2 missing for ${PYTHON}: apt-get install -y python3-psycopg2\n${probe.stderr}`).toBe(0);
    const r = await run(PYTHON, ['-c', script], { env: { DSN: proxy.url() }, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const n = 100_000;
    expect(JSON.parse(r.stdout)).toEqual({
      params: [42, 'it\'s "quoted" \\ ✓', true, '00ff01'],
      copied_in: n,
      stats: [n, (n * (n + 1)) / 2],
      copied_out: [n, '1\tpy-1', `${n}\tpy-${n}`, true],
      error: '22012',
      named_cursor: 12502500,
      cancel: ['57014', true],
      after_cancel: 'alive',
    });
  });
});

describe('TLS between psql and pgnear', () => {
  it('with a certificate configured: sslmode=require succeeds and \\conninfo reports SSL', async () => {
    tlsProxy = await startProxy(cluster(), { tls: { self_signed: true } });
    const r = await psql(
      withQuery(tlsProxy.url(), 'sslmode=require'),
      '-c',
      '\\conninfo',
      '-c',
      'select count(*), sum(length(x)) from (select repeat(g::text, 10) as x from generate_series(1, 100000) g) s',
      '-c',
      'select g from generate_series(1, 100000) g',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^You are connected to database "postgres" as user "postgres" on host "127\.0\.0\.1"/);
    expect(lines[1]).toMatch(/^SSL connection \(protocol: TLSv1\.[23], cipher: /);
    expect(lines.slice(3, -1)).toHaveLength(100_000);
    expect(lines.at(-2)).toBe('100000');
  });

  it('with tls.mode require: a plaintext client is refused, a TLS client gets in', async () => {
    tlsRequiredProxy = await startProxy(cluster(), { tls: { mode: 'require', self_signed: true } });
    const plain = await psql(withQuery(tlsRequiredProxy.url(), 'sslmode=disable'), '-c', 'select 1');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/FATAL: {2}SSL required/);
    const tls = await psql(withQuery(tlsRequiredProxy.url(), 'sslmode=require'), '-c', 'select 1');
    expect([tls.code, tls.stdout]).toEqual([0, '1\n']);
  });

  it('without a certificate (the default config): sslmode=require is refused, sslmode=prefer falls back to plaintext', async () => {
    const req = await psql(withQuery(proxy.url(), 'sslmode=require'), '-c', 'select 1');
    expect(req.code).toBe(2);
    expect(req.stderr).toMatch(/server does not support SSL, but SSL was required/);
    const prefer = await psql(withQuery(proxy.url(), 'sslmode=prefer'), '-c', '\\conninfo');
    expect(prefer.code).toBe(0);
    expect(prefer.stdout).not.toMatch(/SSL connection/);
  });
});
