// The PostgreSQL JDBC driver (pgjdbc 42.5.5, Debian libpostgresql-jdbc-java) through pgnear in transaction pool mode
// with read/write routing to a replica: named server-side statements shared by 8 threads on 3 pooled servers,
// transactions and savepoints, batches, fetch size, CopyManager, cancel, metadata; then what the driver does on
// its own that pgnear must route right: re-preparing after DDL, targetServerType=primary, serializable isolation,
// a SELECT of a writing function, and DateStyle/TimeZone given in `options`.
// One Java program (compiled once) runs per group of checks and prints one JSON line per check.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { run } from '../support/drivers.js';
import type { TestProxy } from '../support/proxy.js';
import { startRoutingProxy, waitForReplicaReads } from '../support/routing.js';

const JAR = '/usr/share/java/postgresql.jar';
const INSTALL = 'apt-get install -y openjdk-17-jdk-headless libpostgresql-jdbc-java';
/** The JVM's zone, which pgjdbc sends as the TimeZone startup parameter (distinct from the server's default). */
const JVM_ZONE = 'Asia/Tokyo';

const cluster = useCluster({ replicas: 1 });
let proxy: TestProxy;
const dir = mkdtempSync(join(tmpdir(), 'pgnear-jdbc-'));

const PROBE = String.raw`
import java.io.*;
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class Probe {
  interface Check { Object run() throws Exception; }

  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    StringBuilder b = new StringBuilder();
    if (v instanceof List) {
      for (Object o : (List<?>) v) b.append(b.length() == 0 ? "[" : ",").append(json(o));
      return b.length() == 0 ? "[]" : b.append("]").toString();
    }
    b.append('"');
    for (char c : v.toString().toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  static String describe(Throwable e) {
    while (e instanceof ExecutionException && e.getCause() != null) e = e.getCause();
    if (e instanceof SQLException) return "SQLSTATE " + ((SQLException) e).getSQLState() + ": " + e.getMessage();
    return e.toString();
  }

  /** One line per check: {"key": value}, or the error (with its SQLSTATE) as the value. */
  static void check(String key, Check c) {
    Object v;
    try { v = c.run(); } catch (Throwable e) { v = describe(e); }
    System.out.println("{" + json(key) + ":" + json(v) + "}");
    System.out.flush();
  }

  static List<Object> list(Object... xs) { return new ArrayList<>(Arrays.asList(xs)); }
  static Connection conn(String url) throws SQLException { return DriverManager.getConnection(url); }

  static Object one(Connection c, String sql) throws SQLException {
    List<Object> row = new ArrayList<>();
    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
      r.next();
      for (int i = 1; i <= r.getMetaData().getColumnCount(); i++) row.add(r.getObject(i));
    }
    return row.size() == 1 ? row.get(0) : row;
  }

  public static void main(String[] args) throws Exception {
    if (args[0].equals("basics")) basics(args[1]);
    else if (args[0].equals("ddl")) { ddl("proxy", args[1], "ddl_p"); ddl("direct", args[2], "ddl_d"); }
    else if (args[0].equals("compat")) { compat("proxy", args[1]); compat("direct", args[2]); }
  }

  static void basics(String url) throws Exception {
    check("connect", () -> { try (Connection c = conn(url)) { return one(c, "select current_user, 40 + 2"); } });
    for (String extra : new String[] {"", "&prepareThreshold=1"}) {
      check(extra.isEmpty() ? "threads_default" : "threads_prepareThreshold_1", () -> {
        ExecutorService ex = Executors.newFixedThreadPool(8);
        List<Future<Long>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
          final int tid = t;
          fs.add(ex.submit(() -> {
            try (Connection c = conn(url + extra);
                PreparedStatement a = c.prepareStatement("select ?::int * 2");
                PreparedStatement b = c.prepareStatement("select ?::int + 1000, 'b'")) {
              long sum = 0;
              for (int i = 1; i <= 20; i++) {
                a.setInt(1, i);
                try (ResultSet r = a.executeQuery()) { r.next(); sum += r.getLong(1); }
                b.setInt(1, tid);
                try (ResultSet r = b.executeQuery()) { r.next(); sum += r.getLong(1); }
              }
              return sum;
            }
          }));
        }
        ex.shutdown();
        long total = 0;
        for (Future<Long> f : fs) total += f.get(60, TimeUnit.SECONDS);
        return total;
      });
    }
    try (Connection c = conn(url); Statement s = c.createStatement()) {
      s.execute("create table jt(a int primary key)");
      check("transactions", () -> {
        c.setAutoCommit(false);
        s.executeUpdate("insert into jt values (1)");
        c.commit();
        s.executeUpdate("insert into jt values (2)");
        c.rollback();
        s.executeUpdate("insert into jt values (3)");
        Savepoint sp = c.setSavepoint();
        s.executeUpdate("insert into jt values (4)");
        String dup;
        try { s.executeUpdate("insert into jt values (1)"); dup = "no error"; } catch (SQLException e) { dup = e.getSQLState(); }
        c.rollback(sp);
        s.executeUpdate("insert into jt values (5)");
        c.commit();
        c.setAutoCommit(true);
        return list(dup, one(c, "select string_agg(a::text, ',' order by a) from jt"));
      });
      for (String rw : new String[] {"true", "false"}) {
        check("batch_rewrite_" + rw, () -> {
          try (Connection b = conn(url + "&reWriteBatchedInserts=" + rw); Statement bs = b.createStatement()) {
            bs.execute("create table jb_" + rw + "(a int, b text)");
            int[] counts;
            try (PreparedStatement ps = b.prepareStatement("insert into jb_" + rw + " values (?, ?)")) {
              for (int i = 1; i <= 1000; i++) { ps.setInt(1, i); ps.setString(2, "row " + i); ps.addBatch(); }
              counts = ps.executeBatch();
            }
            long sum = 0;
            for (int x : counts) sum += x;
            return list(counts.length, sum, one(b, "select count(*), sum(a) from jb_" + rw));
          }
        });
      }
      check("fetch_size", () -> {
        c.setAutoCommit(false);
        long n = 0, sum = 0;
        try (Statement fs = c.createStatement()) {
          fs.setFetchSize(100);
          try (ResultSet r = fs.executeQuery("select g from generate_series(1, 10000) g")) {
            while (r.next()) { n++; sum += r.getLong(1); }
          }
        }
        c.commit();
        c.setAutoCommit(true);
        return list(n, sum);
      });
      check("copy", () -> {
        s.execute("create table jc(a int, b text)");
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        StringBuilder in = new StringBuilder();
        for (int i = 1; i <= 100000; i++) in.append(i).append("\tjdbc ").append(i).append("\\\\").append('\n');
        long copiedIn = cm.copyIn("copy jc from stdin", new StringReader(in.toString()));
        StringWriter out = new StringWriter();
        long copiedOut = cm.copyOut("copy (select a, b from jc order by a) to stdout", out);
        return list(copiedIn, copiedOut, out.toString().equals(in.toString()), one(c, "select b from jc where a = 7"));
      });
      check("cancel", () -> {
        try (Statement st = c.createStatement()) {
          long t0 = System.nanoTime();
          Thread canceller = new Thread(() -> {
            try { Thread.sleep(1000); st.cancel(); } catch (Exception e) { e.printStackTrace(); }
          });
          canceller.start();
          String state;
          try { st.executeQuery("select pg_sleep(10)"); state = "completed"; } catch (SQLException e) { state = e.getSQLState(); }
          long ms = (System.nanoTime() - t0) / 1_000_000;
          canceller.join();
          return list(state, ms < 5000 ? "quick" : ms + " ms", one(c, "select 'alive'"));
        }
      });
      check("metadata", () -> {
        List<Object> names = new ArrayList<>();
        try (ResultSet r = c.getMetaData().getTables(null, "public", "j%", new String[] {"TABLE"})) {
          while (r.next()) names.add(r.getString("TABLE_NAME"));
        }
        return names;
      });
    }
  }

  /** Column count of select * (a fresh PreparedStatement: pgjdbc reuses its cached server statement). */
  static Object columns(Connection c, String table) {
    try (PreparedStatement ps = c.prepareStatement("select * from " + table); ResultSet r = ps.executeQuery()) {
      return r.getMetaData().getColumnCount();
    } catch (SQLException e) { return describe(e); }
  }

  /** Old connection, then new, and the other way round: pgnear must not hide the 0A000 the driver heals on. */
  static void ddl(String label, String url, String table) throws Exception {
    String ps1 = url + "&prepareThreshold=1";
    for (String order : new String[] {"old_first", "new_first"}) {
      String t = table + "_" + order;
      try (Connection w = conn(url); Statement ws = w.createStatement(); Connection c = conn(ps1)) {
        ws.execute("create table " + t + "(a int)");
        ws.execute("insert into " + t + " values (1)");
        List<Object> before = list(columns(c, t), columns(c, t), columns(c, t));
        ws.execute("alter table " + t + " add column b int");
        Check fresh = () -> { try (Connection n = conn(ps1)) { return columns(n, t); } };
        Check old = () -> { // within 2 attempts
          List<Object> attempts = list(columns(c, t));
          if (!attempts.get(0).equals(2)) attempts.add(columns(c, t));
          return attempts.get(attempts.size() - 1).equals(2) ? 2 : attempts;
        };
        check(label + "." + order, () -> {
          Object first = order.equals("old_first") ? old.run() : fresh.run();
          Object second = order.equals("old_first") ? fresh.run() : old.run();
          return order.equals("old_first") ? list(before, first, second) : list(before, second, first);
        });
      }
    }
  }

  static void compat(String label, String url) throws Exception {
    check(label + ".target_primary", () -> {
      try (Connection c = conn(url + "&targetServerType=primary")) { return one(c, "select 1"); }
    });
    check(label + ".serializable_autocommit", () -> {
      try (Connection c = conn(url)) {
        c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
        return list(one(c, "select 1"), c.getTransactionIsolation() == Connection.TRANSACTION_SERIALIZABLE);
      }
    });
    check(label + ".serializable_read_only", () -> {
      try (Connection c = conn(url)) {
        c.setAutoCommit(false);
        c.setReadOnly(true);
        c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
        Object r = one(c, "select 1, current_setting('transaction_isolation'), current_setting('transaction_read_only')");
        c.commit();
        return r;
      }
    });
    check(label + ".write_function", () -> {
      try (Connection c = conn(url); Statement s = c.createStatement()) {
        String t = "wft_" + label, f = "wf_" + label;
        s.execute("create table " + t + "(x int)");
        s.execute("create function " + f + "(x int) returns int language sql volatile as 'insert into " + t + " values (x) returning 1'");
        List<Object> got = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
          try (ResultSet r = s.executeQuery("select " + f + "(1)")) { r.next(); got.add(r.getInt(1)); }
          catch (SQLException e) { got.add(e.getSQLState()); }
        }
        c.setAutoCommit(false); // a read-write transaction: on the primary, whatever pgnear thought of the calls
        got.add(one(c, "select count(*) from " + t));
        c.commit();
        return got;
      }
    });
    check(label + ".options_datestyle", () -> {
      try (Connection c = conn(url + "&options=-c%20DateStyle=SQL,DMY")) {
        return one(c, "select current_setting('DateStyle'), '01/02/2003'::date::text");
      }
    });
    check(label + ".options_timezone", () -> {
      try (Connection c = conn(url + "&options=-c%20TimeZone=America/New_York")) {
        return one(c, "select current_setting('TimeZone')");
      }
    });
  }
}
`;

const jdbcUrl = (port: number) =>
  `jdbc:postgresql://127.0.0.1:${port}/postgres?user=postgres&password=${cluster().superuser.password}` +
  '&connectTimeout=10&socketTimeout=60';

/** Run Probe `mode` with the given URLs; one object of all the checks' values by key. */
async function probe(mode: string, urls: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const r = await run('java', [`-Duser.timezone=${JVM_ZONE}`, '-cp', `${JAR}:${dir}`, 'Probe', mode, ...urls], {
    timeoutMs,
  });
  expect(r.code, `java Probe ${mode} exited with ${r.code ?? r.signal}:\n${r.stderr}\n${r.stdout}`).toBe(0);
  const out: Record<string, unknown> = {};
  for (const line of r.stdout.split('\n')) if (line.trim()) Object.assign(out, JSON.parse(line));
  return out;
}

beforeAll(async () => {
  const java = await run('java', ['-version'], { timeoutMs: 30_000 }).catch((e: Error) => ({
    code: -1,
    stderr: e.message,
  }));
  if (java.code !== 0 || !existsSync(JAR))
    throw new Error(`needs java (17+) and ${JAR}: ${INSTALL}\n${java.code !== 0 ? java.stderr : `${JAR} is missing`}`);
  writeFileSync(join(dir, 'Probe.java'), PROBE);
  const javac = await run('javac', ['-cp', JAR, '-d', dir, join(dir, 'Probe.java')], { timeoutMs: 60_000 });
  if (javac.code !== 0) throw new Error(`javac Probe.java failed (${INSTALL}):\n${javac.stderr}`);
  // Global consistency: a read through pgnear waits for every write pgnear saw, also another client's (the DDL).
  proxy = await startRoutingProxy(cluster(), undefined, { consistency: 'global' }, { pool: { pool_size: 3 } });
  await waitForReplicaReads(proxy.url());
});
afterAll(async () => {
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('pgjdbc through pgnear (transaction pooling, routing to a replica)', () => {
  it('connects with SCRAM; named statements on 8 threads × 3 servers; transactions, batches, fetch size, COPY, cancel, metadata', async () => {
    const n = 100_000;
    // Per thread t: 2 × (1 + … + 20) + 20 × (1000 + t); 8 threads.
    const threads = 8 * 420 + 8 * 20_000 + 20 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7);
    expect(await probe('basics', [jdbcUrl(proxy.port)], 120_000)).toEqual({
      connect: ['postgres', 42],
      threads_default: threads,
      threads_prepareThreshold_1: threads,
      transactions: ['23505', '1,3,5'],
      batch_rewrite_true: [1000, -2 * 1000, [1000, 500500]], // rewritten: SUCCESS_NO_INFO (-2) per row
      batch_rewrite_false: [1000, 1000, [1000, 500500]],
      fetch_size: [10_000, 50_005_000],
      copy: [n, n, true, 'jdbc 7\\'],
      cancel: ['57014', 'quick', 'alive'],
      metadata: ['jb_false', 'jb_true', 'jc', 'jt'],
    });
  });

  it('re-prepares after DDL changed the result type (was 0A000 "cached plan must not change result type" forever)', async () => {
    // [column counts before the ALTER, old connection within 2 attempts, new connection]
    const expected = [[1, 1, 1], 2, 2];
    expect(await probe('ddl', [jdbcUrl(proxy.port), jdbcUrl(cluster().primary.port)], 60_000)).toEqual({
      'direct.old_first': expected,
      'direct.new_first': expected,
      'proxy.old_first': expected,
      'proxy.new_first': expected,
    });
  });

  describe('what the driver sends on its own', () => {
    let compat: Promise<Record<string, unknown>> | undefined;
    /** One JVM for these checks, through pgnear and directly to the primary; each test looks at its keys. */
    const check = async (key: string) => {
      compat ??= probe('compat', [jdbcUrl(proxy.port), jdbcUrl(cluster().primary.port)], 60_000);
      const r = await compat;
      return { direct: r[`direct.${key}`], proxy: r[`proxy.${key}`] };
    };

    it('targetServerType=primary connects (the driver checks SHOW transaction_read_only; was 08001)', async () => {
      expect(await check('target_primary')).toEqual({ direct: 1, proxy: 1 });
    });

    it('SERIALIZABLE isolation in autocommit and in a read-only transaction (was 0A000 on the hot standby)', async () => {
      const readOnly = [1, 'serializable', 'on'];
      expect({
        autocommit: await check('serializable_autocommit'),
        readOnly: await check('serializable_read_only'),
      }).toEqual({
        autocommit: { direct: [1, true], proxy: [1, true] },
        readOnly: { direct: readOnly, proxy: readOnly },
      });
    });

    it('a SELECT of a SQL function that writes, extended protocol (was 25006 every time)', async () => {
      expect(await check('write_function')).toEqual({ direct: [1, 1, 1, 3], proxy: [1, 1, 1, 3] });
    });

    it('options=-c DateStyle / TimeZone end up as directly: the driver startup parameters win', async () => {
      const dateStyle = ['ISO, DMY', '2003-02-01'];
      expect({ dateStyle: await check('options_datestyle'), timeZone: await check('options_timezone') }).toEqual({
        dateStyle: { direct: dateStyle, proxy: dateStyle },
        timeZone: { direct: JVM_ZONE, proxy: JVM_ZONE },
      });
    });
  });
});
