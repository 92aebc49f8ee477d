// SCRAM-SHA-256: the RFC 7677 vector both ways, client ⇄ server exchanges, pass-through with a recovered ClientKey.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatScramVerifier,
  parseScramVerifier,
  ScramClient,
  ScramError,
  type ScramSecret,
  ScramServer,
  scramSecretFromPassword,
} from '../../../../src/protocol/auth/scram.js';

// RFC 7677 section 3 test vector.
const RFC = {
  password: 'pencil',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  cnonce: 'rOprNGfwEbeRWgbNEkqO',
  nonce: 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
/** StoredKey/ServerKey for "pencil" with the RFC salt, computed independently (Python hashlib). */
const PENCIL_VERIFIER =
  'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=';
/** rolpassword from a PostgreSQL 15.4 pg_dumpall (password unknown). */
const REAL_PG_VERIFIER =
  'SCRAM-SHA-256$4096:sidrwJmwYY75vlCKXIudEw==$Ri6LAGfch/jrZt2Vdc/bvdjmix97QF11VEEtJZSms8I=:tb1Y/iGLhJh9D5IdgV6GYFgWMKLDfeAvCq8lDoihAwg=';

/** Controlled nonces: the classes draw them at random, so the test sets the private fields. */
type ClientInternals = { cnonce: string; clientFirstBare: string };
type ServerInternals = { nonce: string; serverFirst: string };

/** Run a full exchange; returns the server's verdict and (if any) lets the client check the server signature. */
function exchange(server: ScramServer, client: ScramClient) {
  const serverFirst = server.handleClientFirst(client.clientFirst());
  const clientFinal = client.handleServerFirst(Buffer.from(serverFirst));
  const result = server.handleClientFinal(clientFinal);
  if (result) client.verifyServerFinal(Buffer.from(result.serverFinal));
  return result;
}

function scramErrorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('RFC 7677 test vector', () => {
  it('scramSecretFromPassword derives the expected StoredKey/ServerKey', () => {
    expect(formatScramVerifier(scramSecretFromPassword(RFC.password, RFC.salt, 4096))).toBe(PENCIL_VERIFIER);
  });

  it('client side: produces the RFC client-final-message and accepts the RFC server signature', () => {
    const client = new ScramClient({ password: RFC.password });
    const priv = client as unknown as ClientInternals;
    priv.cnonce = RFC.cnonce;
    client.clientFirst();
    priv.clientFirstBare = RFC.clientFirstBare; // RFC uses n=user; pgnear sends n=* like libpq
    const final = client.handleServerFirst(Buffer.from(RFC.serverFirst));
    expect(final.toString()).toBe(RFC.clientFinal);
    expect(() => client.verifyServerFinal(Buffer.from(RFC.serverFinal))).not.toThrow();
  });

  it('client side: a tampered server signature is a ScramError', () => {
    const client = new ScramClient({ password: RFC.password });
    const priv = client as unknown as ClientInternals;
    priv.cnonce = RFC.cnonce;
    client.clientFirst();
    priv.clientFirstBare = RFC.clientFirstBare;
    client.handleServerFirst(Buffer.from(RFC.serverFirst));
    const bad = Buffer.from(RFC.serverFinal.slice(2), 'base64');
    bad[0] ^= 1;
    expect(scramErrorOf(() => client.verifyServerFinal(Buffer.from(`v=${bad.toString('base64')}`)))).toBeInstanceOf(
      ScramError,
    );
  });

  it('server side: verifies the RFC proof and answers with the RFC server signature', () => {
    const secret = scramSecretFromPassword(RFC.password, RFC.salt, 4096);
    const server = new ScramServer(secret);
    server.handleClientFirst(Buffer.from(`n,,${RFC.clientFirstBare}`));
    const priv = server as unknown as ServerInternals;
    priv.nonce = RFC.nonce;
    priv.serverFirst = RFC.serverFirst;
    const r = server.handleClientFinal(Buffer.from(RFC.clientFinal));
    expect(r).not.toBeNull();
    expect(r!.serverFinal).toBe(RFC.serverFinal);
    // The recovered ClientKey is the one the password derives.
    const again = scramSecretFromPassword(RFC.password, RFC.salt, 4096);
    expect(r!.clientKey.length).toBe(32);
    expect(formatScramVerifier({ ...again, storedKey: sha256(r!.clientKey) })).toBe(PENCIL_VERIFIER);
  });

  it('server side: a proof with one flipped bit is rejected (null)', () => {
    const server = new ScramServer(scramSecretFromPassword(RFC.password, RFC.salt, 4096));
    server.handleClientFirst(Buffer.from(`n,,${RFC.clientFirstBare}`));
    const priv = server as unknown as ServerInternals;
    priv.nonce = RFC.nonce;
    priv.serverFirst = RFC.serverFirst;
    const i = RFC.clientFinal.indexOf(',p=') + 3;
    const proof = Buffer.from(RFC.clientFinal.slice(i), 'base64');
    proof[31] ^= 0x80;
    expect(server.handleClientFinal(Buffer.from(RFC.clientFinal.slice(0, i) + proof.toString('base64')))).toBeNull();
  });
});

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

describe('ScramServer ⇄ ScramClient', () => {
  it('the right password succeeds and the client accepts the server signature', () => {
    const secret = scramSecretFromPassword('s3cret');
    const r = exchange(new ScramServer(secret), new ScramClient({ password: 's3cret' }));
    expect(r).not.toBeNull();
    expect(sha256(r!.clientKey).equals(secret.storedKey)).toBe(true);
  });

  it('a wrong password fails: handleClientFinal returns null', () => {
    const secret = scramSecretFromPassword('s3cret');
    expect(exchange(new ScramServer(secret), new ScramClient({ password: 's3cret!' }))).toBeNull();
  });

  it('unknown user (null secret) always fails, with a salt stable per mock seed', () => {
    expect(exchange(new ScramServer(null, 'ghost'), new ScramClient({ password: '' }))).toBeNull();
    const salt = (seed: string) =>
      new ScramServer(null, seed).handleClientFirst(Buffer.from('n,,n=*,r=abc')).match(/,s=([^,]+),/)![1];
    expect(salt('ghost')).toBe(salt('ghost'));
    expect(salt('ghost')).not.toBe(salt('other'));
  });

  it('NFKC-equivalent passwords match (RFC 4013 example: "Ⅸ" ≡ "IX")', () => {
    const secret = scramSecretFromPassword('IX');
    expect(exchange(new ScramServer(secret), new ScramClient({ password: '\u2168' }))).not.toBeNull();
  });

  it('works with a parsed verifier and other iteration counts', () => {
    const secret = parseScramVerifier(
      formatScramVerifier(scramSecretFromPassword('pw', Buffer.from('saltsalt'), 1000)),
    )!;
    expect(exchange(new ScramServer(secret), new ScramClient({ password: 'pw' }))).not.toBeNull();
  });
});

describe('SCRAM pass-through with a recovered ClientKey', () => {
  it('ClientKey recovered by one server logs in to a second server holding the same secret', () => {
    const secret = scramSecretFromPassword('only-the-client-knows');
    // pgnear (server 1) knows only the secret; the client knows the password.
    const r1 = exchange(new ScramServer(secret), new ScramClient({ password: 'only-the-client-knows' }));
    expect(r1).not.toBeNull();
    // pgnear (client) → real server (server 2) with the same secret, without the password.
    const copy: ScramSecret = parseScramVerifier(formatScramVerifier(secret))!;
    const r2 = exchange(new ScramServer(copy), new ScramClient({ clientKey: r1!.clientKey, secret }));
    expect(r2).not.toBeNull();
    expect(r2!.clientKey.equals(r1!.clientKey)).toBe(true);
  });

  it('a second server with a different salt → ScramError from the client', () => {
    const secret = scramSecretFromPassword('pw');
    const r1 = exchange(new ScramServer(secret), new ScramClient({ password: 'pw' }))!;
    const other = scramSecretFromPassword('pw'); // same password, fresh random salt
    expect(other.salt.equals(secret.salt)).toBe(false);
    const server2 = new ScramServer(other);
    const client = new ScramClient({ clientKey: r1.clientKey, secret });
    const serverFirst = server2.handleClientFirst(client.clientFirst());
    expect(scramErrorOf(() => client.handleServerFirst(Buffer.from(serverFirst)))).toBeInstanceOf(ScramError);
  });

  it('a second server with different iterations → ScramError from the client', () => {
    const salt = Buffer.from('0123456789abcdef');
    const secret = scramSecretFromPassword('pw', salt, 4096);
    const r1 = exchange(new ScramServer(secret), new ScramClient({ password: 'pw' }))!;
    const server2 = new ScramServer(scramSecretFromPassword('pw', salt, 4097));
    const client = new ScramClient({ clientKey: r1.clientKey, secret });
    const serverFirst = server2.handleClientFirst(client.clientFirst());
    expect(scramErrorOf(() => client.handleServerFirst(Buffer.from(serverFirst)))).toBeInstanceOf(ScramError);
  });
});

describe('ScramServer input checks', () => {
  const server = () => new ScramServer(scramSecretFromPassword('pw'));

  it('channel binding required by the client (p flag) is rejected', () => {
    for (const m of ['p=tls-server-end-point,,n=*,r=abc', 'p,,n=*,r=abc']) {
      expect(scramErrorOf(() => server().handleClientFirst(Buffer.from(m)))).toBeInstanceOf(ScramError);
    }
  });

  it('"y" (client supports binding, server does not advertise) and "n" are accepted', () => {
    expect(server().handleClientFirst(Buffer.from('y,,n=*,r=abc'))).toMatch(/^r=abc.+,s=.+,i=4096$/);
    expect(server().handleClientFirst(Buffer.from('n,,n=*,r=abc'))).toMatch(/^r=abc/);
  });

  it('authzid, missing nonce, bad nonce characters, extensions and garbage → ScramError', () => {
    for (const m of [
      'n,a=admin,n=*,r=abc',
      'n,,n=*',
      'n,,n=*,r=a\x01b',
      'n,,m=ext,n=*,r=abc',
      'garbage',
      'x,,n=*,r=abc',
    ]) {
      expect(
        scramErrorOf(() => server().handleClientFirst(Buffer.from(m))),
        m,
      ).toBeInstanceOf(ScramError);
    }
  });

  it('client-final with a wrong nonce, wrong channel binding or no proof → ScramError', () => {
    const mk = () => {
      const s = server();
      const nonce = /^r=([^,]+)/.exec(s.handleClientFirst(Buffer.from('n,,n=*,r=abc')))![1];
      return { s, nonce };
    };
    const proof = Buffer.alloc(32).toString('base64');
    let t = mk();
    expect(scramErrorOf(() => t.s.handleClientFinal(Buffer.from(`c=biws,r=${t.nonce}x,p=${proof}`)))).toBeInstanceOf(
      ScramError,
    );
    t = mk();
    expect(scramErrorOf(() => t.s.handleClientFinal(Buffer.from(`c=eSws,r=${t.nonce},p=${proof}`)))).toBeInstanceOf(
      ScramError,
    );
    t = mk();
    expect(scramErrorOf(() => t.s.handleClientFinal(Buffer.from(`c=biws,r=${t.nonce}`)))).toBeInstanceOf(ScramError);
    t = mk();
    expect(scramErrorOf(() => t.s.handleClientFinal(Buffer.from(`c=biws,r=${t.nonce},p=AAAA`)))).toBeInstanceOf(
      ScramError,
    );
  });
});

describe('ScramClient input checks', () => {
  it('server nonce not extending the client nonce, empty salt or bad iterations → ScramError', () => {
    const cases = (cn: string) => [
      `r=zzz${cn}x,s=c2FsdA==,i=4096`,
      `r=${cn}x,s=,i=4096`,
      `r=${cn}x,s=c2FsdA==,i=0`,
      `r=${cn}x,s=c2FsdA==,i=abc`,
    ];
    for (let i = 0; i < 4; i++) {
      const c = new ScramClient({ password: 'pw' });
      const cn = /r=(.+)$/.exec(c.clientFirst().toString())![1];
      expect(scramErrorOf(() => c.handleServerFirst(Buffer.from(cases(cn)[i])))).toBeInstanceOf(ScramError);
    }
  });

  it('server-final with e= → ScramError; server-final before server-first → ScramError', () => {
    const c = new ScramClient({ password: 'pw' });
    c.clientFirst();
    expect(scramErrorOf(() => c.verifyServerFinal(Buffer.from('e=invalid-proof')))).toBeInstanceOf(ScramError);
    expect(scramErrorOf(() => c.verifyServerFinal(Buffer.from(RFC.serverFinal)))).toBeInstanceOf(ScramError);
  });

  it('client-first uses n=* and no channel binding, like libpq', () => {
    expect(new ScramClient({ password: 'x' }).clientFirst().toString()).toMatch(/^n,,n=\*,r=[\x21-\x2b\x2d-\x7e]+$/);
  });
});

describe('verifier parse/format', () => {
  it('a verifier from a real Postgres parses and formats back identically', () => {
    const s = parseScramVerifier(REAL_PG_VERIFIER);
    expect(s).not.toBeNull();
    expect(s!.iterations).toBe(4096);
    expect(s!.salt.length).toBe(16);
    expect(s!.storedKey.length).toBe(32);
    expect(s!.serverKey.length).toBe(32);
    expect(formatScramVerifier(s!)).toBe(REAL_PG_VERIFIER);
  });

  it('round trip (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (iterations, salt, storedKey, serverKey) => {
          const s = {
            iterations,
            salt: Buffer.from(salt),
            storedKey: Buffer.from(storedKey),
            serverKey: Buffer.from(serverKey),
          };
          const text = formatScramVerifier(s);
          expect(parseScramVerifier(text)).toEqual(s);
        },
      ),
    );
  });

  it('non-verifiers → null', () => {
    for (const s of [
      'pencil',
      'md5871c429757b7a0bf1654fad112b77bd4',
      'SCRAM-SHA-256$0:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
      'SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
      'SCRAM-SHA-256$4096:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=',
      'SCRAM-SHA-1$4096:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    ]) {
      expect(parseScramVerifier(s), s).toBeNull();
    }
  });
});
