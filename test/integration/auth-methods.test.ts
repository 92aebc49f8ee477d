// Client authentication through pgnear: every auth.type × every secret source (auth_query on pg_shadow, auth.users
// with a plain password, an md5 hash, a SCRAM verifier), success and failure, with Postgres's exact wording.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startProxy, type TestProxy } from '../support/proxy.js';
import { md5Secret, RawClient, ServerErrorResponse, startupPacket, waitFor } from '../support/rawclient.js';

const PW = {
  app_scram: 'Scram-pw-1',
  app_md5: 'Md5-pw-1',
  app_rot: 'rot-old-1',
  u_plain: 'plain-pw-1',
  u_md5: 'umd5-pw-1',
  u_scramv: 'uscram-pw-1',
} as const;
type Role = keyof typeof PW;

const cluster = useCluster({
  replicas: 0,
  roles: [
    { name: 'app_scram', password: PW.app_scram, encryption: 'scram-sha-256' },
    { name: 'app_md5', password: PW.app_md5, encryption: 'md5' },
    { name: 'app_rot', password: PW.app_rot, encryption: 'scram-sha-256' },
    { name: 'u_plain', password: PW.u_plain, encryption: 'scram-sha-256' },
    { name: 'u_md5', password: PW.u_md5, encryption: 'md5' },
    { name: 'u_scramv', password: PW.u_scramv, encryption: 'scram-sha-256' },
  ],
});

type Method = 'scram-sha-256' | 'md5' | 'plain' | 'trust';
const proxies = {} as Record<Method, TestProxy>;
let scramVerifier = '';

beforeAll(async () => {
  const direct = new pg.Client(cluster().primary.url);
  await direct.connect();
  try {
    const r = await direct.query("select rolpassword from pg_authid where rolname = 'u_scramv'");
    scramVerifier = r.rows[0].rolpassword;
  } finally {
    await direct.end();
  }
  expect(scramVerifier).toMatch(/^SCRAM-SHA-256\$\d+:/);
  const users = [
    { name: 'u_plain', password: PW.u_plain },
    { name: 'u_md5', password: md5Secret(PW.u_md5, 'u_md5') },
    { name: 'u_scramv', password: scramVerifier },
  ];
  for (const type of ['scram-sha-256', 'md5', 'plain', 'trust'] as Method[]) {
    proxies[type] = await startProxy(cluster(), { auth: { type, users } });
  }
});

afterAll(async () => {
  for (const p of Object.values(proxies)) await p?.stop().catch(() => {});
});

function clientFor(method: Method, user: string, password: string | undefined, database = 'postgres'): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: proxies[method].port, user, password, database });
}

/** Logs in through pgnear and checks the server session really runs as `user`. */
async function expectLogin(method: Method, user: string, password: string | undefined): Promise<void> {
  const c = clientFor(method, user, password);
  await c.connect();
  try {
    const r = await c.query('select current_user as cu, session_user as su, inet_server_port() as port');
    expect(r.rows[0]).toEqual({ cu: user, su: user, port: cluster().primary.port });
  } finally {
    await c.end();
  }
}

async function expectAuthFailure(method: Method, user: string, password: string): Promise<void> {
  const c = clientFor(method, user, password);
  const err = await c.connect().then(
    () => {
      void c.end();
      return null;
    },
    (e: Error & { code?: string; severity?: string }) => e,
  );
  expect(err, `login as ${user} through ${method} should fail`).not.toBeNull();
  expect({ code: err!.code, severity: err!.severity, message: err!.message }).toEqual({
    code: '28P01',
    severity: 'FATAL',
    message: `password authentication failed for user "${user}"`,
  });
}

/** The first Authentication request pgnear sends for this user (0 ok, 3 cleartext, 5 md5, 10 SASL). */
async function firstAuthRequest(method: Method, user: string): Promise<number> {
  const raw = await RawClient.connect(proxies[method].port);
  try {
    raw.write(startupPacket({ user, database: 'postgres' }));
    const m = await raw.next();
    expect(m.type).toBe('R');
    return m.body.readInt32BE(0);
  } finally {
    raw.destroy();
  }
}

// [method, role, first auth request pgnear must send, login with the right password succeeds]
// Postgres semantics: md5 with a SCRAM secret upgrades to SCRAM; scram-sha-256 with an md5 secret cannot work.
const MATRIX: [Method, Role, number, boolean][] = [
  ['scram-sha-256', 'app_scram', 10, true],
  ['scram-sha-256', 'app_md5', 10, false],
  ['scram-sha-256', 'u_plain', 10, true],
  ['scram-sha-256', 'u_md5', 10, false],
  ['scram-sha-256', 'u_scramv', 10, true],
  ['md5', 'app_scram', 10, true],
  ['md5', 'app_md5', 5, true],
  ['md5', 'u_plain', 5, true],
  ['md5', 'u_md5', 5, true],
  ['md5', 'u_scramv', 10, true],
  ['plain', 'app_scram', 3, true],
  ['plain', 'app_md5', 3, true],
  ['plain', 'u_plain', 3, true],
  ['plain', 'u_md5', 3, true],
  ['plain', 'u_scramv', 3, true],
];

describe.each(MATRIX)('auth.type %s, role %s', (method, role, authReq, works) => {
  it(`asks the client for auth method ${authReq}`, async () => {
    expect(await firstAuthRequest(method, role)).toBe(authReq);
  });

  if (works) {
    it('accepts the right password and the server session runs as the role', async () => {
      await expectLogin(method, role, PW[role]);
    });
  } else {
    it('refuses even the right password (an md5 secret cannot verify SCRAM), with 28P01', async () => {
      await expectAuthFailure(method, role, PW[role]);
    });
  }

  it('refuses a wrong password with 28P01 and the exact Postgres message', async () => {
    await expectAuthFailure(method, role, `${PW[role]}x`);
  });
});

describe('trust', () => {
  it('sends AuthenticationOk straight away', async () => {
    expect(await firstAuthRequest('trust', 'app_md5')).toBe(0);
  });

  it('logs in with any password when the stored secret can log in to the server (md5 via auth_query)', async () => {
    await expectLogin('trust', 'app_md5', 'not-the-password');
  });

  it('logs in with a plain password from auth.users', async () => {
    await expectLogin('trust', 'u_plain', undefined);
  });
});

describe('SCRAM pass-through (auth_query, pgnear never knows the password)', () => {
  it('the server backend belongs to the role, authenticated by pgnear with the client proof', async () => {
    const c = clientFor('scram-sha-256', 'app_scram', PW.app_scram);
    await c.connect();
    const direct = new pg.Client(cluster().primary.url);
    await direct.connect();
    try {
      const pid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid;
      const r = await direct.query('select usename from pg_stat_activity where pid = $1', [pid]);
      expect(r.rows).toEqual([{ usename: 'app_scram' }]);
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('postgres.js also logs in with SCRAM (scram-sha-256 and md5 proxies)', async () => {
    for (const method of ['scram-sha-256', 'md5'] as Method[]) {
      const sql = postgres({
        host: '127.0.0.1',
        port: proxies[method].port,
        user: 'app_scram',
        password: PW.app_scram,
        database: 'postgres',
        max: 1,
        onnotice: () => {},
      });
      try {
        const rows = await sql`select current_user as cu`;
        expect(rows[0].cu).toBe('app_scram');
      } finally {
        await sql.end({ timeout: 5 });
      }
    }
  });

  it('a pooled server connection of the role is not handed to a client with a wrong password', async () => {
    await expectLogin('scram-sha-256', 'app_scram', PW.app_scram);
    await expectAuthFailure('scram-sha-256', 'app_scram', 'wrong');
    await expectLogin('scram-sha-256', 'app_scram', PW.app_scram);
  });
});

describe('unknown user and database', () => {
  it.each(['scram-sha-256', 'md5', 'plain'] as Method[])('%s: an unknown user gets 28P01', async (method) => {
    await expectAuthFailure(method, 'nosuchuser', 'whatever');
  });

  it('trust: an unknown user is refused with a FATAL 28xxx error', async () => {
    const c = clientFor('trust', 'nosuchuser', 'whatever');
    const err = (await c.connect().then(
      () => null,
      (e) => e,
    )) as (Error & { code?: string; severity?: string }) | null;
    if (!err) await c.end();
    expect(err).not.toBeNull();
    expect(err!.severity, err!.message).toBe('FATAL');
    // Postgres with trust: 28000 role "nosuchuser" does not exist; PgBouncer: 28P01.
    expect(['28000', '28P01'], `${err!.code} ${err!.message}`).toContain(err!.code);
  });

  it('trust: a role with only a SCRAM secret (no client proof to pass through) gets a clean FATAL, not a hang', async () => {
    const c = clientFor('trust', 'app_scram', undefined);
    const err = (await c.connect().then(
      () => null,
      (e) => e,
    )) as (Error & { code?: string; severity?: string }) | null;
    if (!err) await c.end();
    expect(err).not.toBeNull();
    expect(err!.severity, err!.message).toBe('FATAL');
    await expectLogin('trust', 'app_md5', undefined);
  });

  it.each(['scram-sha-256', 'md5', 'plain'] as Method[])('%s: unknown database gets 3D000', async (method) => {
    const role: Role = method === 'scram-sha-256' ? 'app_scram' : 'app_md5';
    const c = clientFor(method, role, PW[role], 'nodb');
    const err = (await c.connect().then(
      () => null,
      (e) => e,
    )) as (Error & { code?: string; severity?: string }) | null;
    if (!err) await c.end();
    expect(err).not.toBeNull();
    expect({ code: err!.code, severity: err!.severity, message: err!.message }).toEqual({
      code: '3D000',
      severity: 'FATAL',
      message: 'database "nodb" does not exist',
    });
  });

  it('the raw ErrorResponse for a wrong password is FATAL 28P01 and the connection closes', async () => {
    const raw = await RawClient.connect(proxies['scram-sha-256'].port);
    const err = await raw.login({ user: 'app_scram', password: 'nope' }).then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(ServerErrorResponse);
    expect((err as ServerErrorResponse).fields).toMatchObject({
      severity: 'FATAL',
      code: '28P01',
      message: 'password authentication failed for user "app_scram"',
    });
    await raw.waitClose(3000);
  });
});

describe('password change on the primary', () => {
  it('the new password works once the auth_query cache (≤5 s) expires, and the old one stops working', async () => {
    await expectLogin('scram-sha-256', 'app_rot', PW.app_rot);
    const direct = new pg.Client(cluster().primary.url);
    await direct.connect();
    try {
      await direct.query("alter role app_rot password 'rot-new-2'");
    } finally {
      await direct.end();
    }
    const t0 = Date.now();
    await waitFor(
      async () => {
        await expectLogin('scram-sha-256', 'app_rot', 'rot-new-2');
        return true;
      },
      10_000,
      'login with the new password',
      250,
    );
    // Documented: auth_query results are cached for up to 5 s.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expectAuthFailure('scram-sha-256', 'app_rot', PW.app_rot);
    // md5 and plain proxies cache independently; they must also converge.
    await waitFor(
      async () => {
        await expectLogin('plain', 'app_rot', 'rot-new-2');
        return true;
      },
      10_000,
      'plain login with the new password',
      250,
    );
  });
});
