// authenticateClient against an in-memory client that speaks the real protocol (pg-protocol encodes and parses).
import { createHash } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { ScramClient, scramSecretFromPassword } from '../../../src/protocol/auth/scram.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { type AuthIO, type AuthMethod, AuthFailure, authenticateClient } from '../../../src/session/client-auth.js';
import type { StoredSecret } from '../../../src/session/secrets.js';

const md5hex = (s: string | Buffer) => createHash('md5').update(s).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

const plainSecret = (password: string): StoredSecret => ({
  kind: 'plain',
  password,
  scram: scramSecretFromPassword(password),
});
const scramSecret = (password: string): StoredSecret => ({ kind: 'scram', secret: scramSecretFromPassword(password) });
const md5Secret = (password: string, user: string): StoredSecret => ({
  kind: 'md5',
  hash: `md5${md5hex(password + user)}`,
});

type Parsed = { name: string; [field: string]: unknown };

interface ClientScript {
  user: string;
  password: string;
  /** Replace the n-th (0-based) message the client would send. */
  tamper?: (index: number, msg: Buffer) => Buffer;
  /** gs2 header / mechanism overrides for negative tests. */
  mechanism?: string;
  gs2?: string;
}

/**
 * A client that answers whatever pgnear asks for: cleartext, md5 (computed here, not with src/), or SCRAM
 * (ScramClient). Server messages are parsed by pg-protocol, independently of src/protocol/backend.ts.
 */
function mockClient(script: ClientScript) {
  const seen: Parsed[] = [];
  const outbox: Buffer[] = [];
  let sent = 0;
  let scram: ScramClient | null = null;
  let serverVerified = false;
  const parser = new Parser();
  const reply = (b: Buffer) => {
    outbox.push(script.tamper ? script.tamper(sent, b) : b);
    sent++;
  };
  const onServer = (m: Parsed) => {
    seen.push(m);
    switch (m.name) {
      case 'authenticationCleartextPassword':
        reply(serialize.password(script.password));
        break;
      case 'authenticationMD5Password': {
        const salt = Buffer.from(m.salt as Buffer);
        const inner = md5hex(script.password + script.user);
        reply(serialize.password(`md5${md5hex(Buffer.concat([Buffer.from(inner), salt]))}`));
        break;
      }
      case 'authenticationSASL': {
        expect(m.mechanisms).toContain('SCRAM-SHA-256');
        scram = new ScramClient({ password: script.password });
        let first = scram.clientFirst().toString();
        if (script.gs2) first = script.gs2 + first.slice(3);
        reply(serialize.sendSASLInitialResponseMessage(script.mechanism ?? 'SCRAM-SHA-256', first));
        break;
      }
      case 'authenticationSASLContinue':
        reply(
          serialize.sendSCRAMClientFinalMessage(scram!.handleServerFirst(Buffer.from(m.data as string)).toString()),
        );
        break;
      case 'authenticationSASLFinal':
        scram!.verifyServerFinal(Buffer.from(m.data as string));
        serverVerified = true;
        break;
      default:
        throw new Error(`unexpected server message ${m.name}`);
    }
  };
  const io: AuthIO = {
    send(b: Buffer) {
      parser.parse(b, (msg) => onServer(msg as unknown as Parsed));
    },
    recv() {
      const next = outbox.shift();
      return next ? Promise.resolve(next) : Promise.reject(new Error('mock client has nothing to send'));
    },
  };
  return {
    io,
    seen: () => seen.map((m) => m.name),
    serverVerified: () => serverVerified,
  };
}

async function failureOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected authentication to fail');
}

const SCRAM_FLOW = ['authenticationSASL', 'authenticationSASLContinue', 'authenticationSASLFinal'];

describe('scram-sha-256 method', () => {
  it('SCRAM secret: success yields scram-keys creds with the recovered ClientKey', async () => {
    const secret = scramSecret('pencil');
    const c = mockClient({ user: 'alice', password: 'pencil' });
    const creds = await authenticateClient(c.io, 'scram-sha-256', 'alice', secret);
    expect(c.seen()).toEqual(SCRAM_FLOW);
    expect(c.serverVerified()).toBe(true);
    expect(creds.kind).toBe('scram-keys');
    if (creds.kind !== 'scram-keys' || secret.kind !== 'scram') return;
    expect(creds.secret).toBe(secret.secret);
    expect(sha256(creds.clientKey).equals(secret.secret.storedKey)).toBe(true);
  });

  it('every login proving one SCRAM secret gets the same credentials object; another secret gets its own', async () => {
    const secret = scramSecret('pencil');
    const login = async (pw: string, s = secret) =>
      authenticateClient(mockClient({ user: 'alice', password: pw }).io, 'scram-sha-256', 'alice', s);
    const first = await login('pencil');
    expect(await login('pencil')).toBe(first);
    const other = await login('pen', scramSecret('pen'));
    expect(other).not.toBe(first);
    if (other.kind !== 'scram-keys' || first.kind !== 'scram-keys') throw new Error('expected scram-keys');
    expect(other.clientKey.equals(first.clientKey)).toBe(false);
    await expect(login('wrong')).rejects.toThrow(/password authentication failed/);
  });

  it('plain secret: success yields password creds', async () => {
    const c = mockClient({ user: 'alice', password: 'pencil' });
    const creds = await authenticateClient(c.io, 'scram-sha-256', 'alice', plainSecret('pencil'));
    expect(c.seen()).toEqual(SCRAM_FLOW);
    expect(creds).toEqual({ kind: 'password', password: 'pencil' });
  });

  it('wrong password → AuthFailure 28P01, no SASLFinal sent', async () => {
    for (const secret of [scramSecret('pencil'), plainSecret('pencil')]) {
      const c = mockClient({ user: 'alice', password: 'crayon' });
      const e = await failureOf(authenticateClient(c.io, 'scram-sha-256', 'alice', secret));
      expect(e).toBeInstanceOf(AuthFailure);
      expect((e as AuthFailure).sqlstate).toBe('28P01');
      expect((e as AuthFailure).message).toBe('password authentication failed for user "alice"');
      expect(c.seen()).toEqual(SCRAM_FLOW.slice(0, 2));
    }
  });

  it('unknown user (secret null) → 28P01 only after a full mock exchange', async () => {
    const c = mockClient({ user: 'ghost', password: 'whatever' });
    const e = await failureOf(authenticateClient(c.io, 'scram-sha-256', 'ghost', null));
    expect(e).toBeInstanceOf(AuthFailure);
    expect((e as AuthFailure).sqlstate).toBe('28P01');
    expect(c.seen()).toEqual(SCRAM_FLOW.slice(0, 2));
  });

  it("md5 secret cannot do SCRAM → 28P01 with Postgres's detail", async () => {
    const c = mockClient({ user: 'bob', password: 'pw' });
    const e = await failureOf(authenticateClient(c.io, 'scram-sha-256', 'bob', md5Secret('pw', 'bob')));
    expect(e).toBeInstanceOf(AuthFailure);
    expect((e as AuthFailure).sqlstate).toBe('28P01');
    expect((e as AuthFailure).detail).toBe('User "bob" does not have a valid SCRAM secret.');
  });

  it('wrong SASL mechanism → ProtocolError', async () => {
    const c = mockClient({ user: 'a', password: 'pw', mechanism: 'SCRAM-SHA-256-PLUS' });
    expect(await failureOf(authenticateClient(c.io, 'scram-sha-256', 'a', scramSecret('pw')))).toBeInstanceOf(
      ProtocolError,
    );
  });

  it('client demanding channel binding → ProtocolError', async () => {
    const c = mockClient({ user: 'a', password: 'pw', gs2: 'p=tls-server-end-point,,' });
    expect(await failureOf(authenticateClient(c.io, 'scram-sha-256', 'a', scramSecret('pw')))).toBeInstanceOf(
      ProtocolError,
    );
  });
});

describe('md5 method', () => {
  it('md5 secret: success yields md5-hash creds', async () => {
    const secret = md5Secret('pw', 'bob');
    const c = mockClient({ user: 'bob', password: 'pw' });
    const creds = await authenticateClient(c.io, 'md5', 'bob', secret);
    expect(c.seen()).toEqual(['authenticationMD5Password']);
    expect(creds).toEqual({ kind: 'md5-hash', hash: (secret as { hash: string }).hash });
  });

  it('plain secret: md5 exchange, password creds', async () => {
    const c = mockClient({ user: 'bob', password: 'pw' });
    const creds = await authenticateClient(c.io, 'md5', 'bob', plainSecret('pw'));
    expect(c.seen()).toEqual(['authenticationMD5Password']);
    expect(creds).toEqual({ kind: 'password', password: 'pw' });
  });

  it('salts differ between attempts', async () => {
    const salts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const c = mockClient({ user: 'bob', password: 'pw' });
      let salt = '';
      const send = c.io.send;
      c.io.send = (b) => {
        salt = b.subarray(9, 13).toString('hex');
        send(b);
      };
      await authenticateClient(c.io, 'md5', 'bob', md5Secret('pw', 'bob'));
      salts.add(salt);
    }
    expect(salts.size).toBeGreaterThan(1);
  });

  it('wrong password, or the right password for another user name → 28P01', async () => {
    for (const [user, pw] of [
      ['bob', 'nope'],
      ['eve', 'pw'],
    ]) {
      const c = mockClient({ user, password: pw });
      const e = await failureOf(authenticateClient(c.io, 'md5', 'bob', md5Secret('pw', 'bob')));
      expect(e).toBeInstanceOf(AuthFailure);
      expect((e as AuthFailure).sqlstate).toBe('28P01');
    }
  });

  it('unknown user → md5 challenge, then 28P01', async () => {
    const c = mockClient({ user: 'ghost', password: 'pw' });
    const e = await failureOf(authenticateClient(c.io, 'md5', 'ghost', null));
    expect(e).toBeInstanceOf(AuthFailure);
    expect((e as AuthFailure).sqlstate).toBe('28P01');
    expect(c.seen()).toEqual(['authenticationMD5Password']);
  });

  it('SCRAM secret upgrades the exchange to SCRAM', async () => {
    const secret = scramSecret('pw');
    const c = mockClient({ user: 'carol', password: 'pw' });
    const creds = await authenticateClient(c.io, 'md5', 'carol', secret);
    expect(c.seen()).toEqual(SCRAM_FLOW);
    expect(creds.kind).toBe('scram-keys');
  });
});

describe('plain method', () => {
  it('cleartext password checked against plain, md5 and SCRAM secrets', async () => {
    for (const secret of [plainSecret('pw'), md5Secret('pw', 'dave'), scramSecret('pw')]) {
      const c = mockClient({ user: 'dave', password: 'pw' });
      const creds = await authenticateClient(c.io, 'plain', 'dave', secret);
      expect(c.seen()).toEqual(['authenticationCleartextPassword']);
      expect(creds).toEqual({ kind: 'password', password: 'pw' });
    }
  });

  it('wrong password or unknown user → 28P01', async () => {
    for (const secret of [plainSecret('pw'), md5Secret('pw', 'dave'), scramSecret('pw'), null]) {
      const c = mockClient({ user: 'dave', password: 'px' });
      const e = await failureOf(authenticateClient(c.io, 'plain', 'dave', secret));
      expect(e).toBeInstanceOf(AuthFailure);
      expect((e as AuthFailure).sqlstate).toBe('28P01');
    }
  });
});

describe('trust method', () => {
  it('asks nothing and passes on what the secret allows', async () => {
    const cases: [StoredSecret | null, string][] = [
      [plainSecret('pw'), 'password'],
      [md5Secret('pw', 'u'), 'md5-hash'],
      [scramSecret('pw'), 'none'],
      [{ kind: 'none' }, 'none'],
    ];
    for (const [secret, kind] of cases) {
      const c = mockClient({ user: 'u', password: 'pw' });
      const creds = await authenticateClient(c.io, 'trust', 'u', secret);
      expect(c.seen()).toEqual([]);
      expect(creds.kind).toBe(kind);
    }
  });
});

describe('trust method with an unknown role', () => {
  it('is refused with 28000 role does not exist, as Postgres does', async () => {
    const c = mockClient({ user: 'ghost', password: 'pw' });
    await expect(authenticateClient(c.io, 'trust', 'ghost', null)).rejects.toMatchObject({
      sqlstate: '28000',
      message: 'role "ghost" does not exist',
    });
    expect(c.seen()).toEqual([]);
  });
});

describe('protocol violations', () => {
  const query = serialize.query('SELECT 1');
  const cases: [AuthMethod, StoredSecret, number][] = [
    ['plain', plainSecret('pw'), 0],
    ['md5', md5Secret('pw', 'u'), 0],
    ['scram-sha-256', scramSecret('pw'), 0], // instead of SASLInitialResponse
    ['scram-sha-256', scramSecret('pw'), 1], // instead of SASLResponse
  ];
  for (const [method, secret, at] of cases) {
    it(`${method}: a non-'p' message as message #${at} → ProtocolError`, async () => {
      const c = mockClient({ user: 'u', password: 'pw', tamper: (i, m) => (i === at ? query : m) });
      const e = await failureOf(authenticateClient(c.io, method, 'u', secret));
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).sqlstate).toBe('08P01');
    });
  }

  it('a truncated SASLInitialResponse → ProtocolError', async () => {
    const bad = Buffer.from('p\0\0\0\x0bSCRAM\0\0\0');
    const c = mockClient({ user: 'u', password: 'pw', tamper: (i, m) => (i === 0 ? bad : m) });
    expect(await failureOf(authenticateClient(c.io, 'scram-sha-256', 'u', scramSecret('pw')))).toBeInstanceOf(
      ProtocolError,
    );
  });
});
