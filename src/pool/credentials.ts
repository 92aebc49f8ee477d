// What pgnear may log in to a server with on behalf of a client, as learned from that client's authentication.
import type { ScramSecret } from '../protocol/auth/scram.js';

export type ServerCredentials =
  /** The plain password: works with every server method. */
  | { kind: 'password'; password: string }
  /** SCRAM pass-through: the ClientKey recovered from the client's proof plus the secret it matched. */
  | { kind: 'scram-keys'; clientKey: Buffer; secret: ScramSecret }
  /** An "md5…" hash from pg_shadow: enough for md5 server auth. */
  | { kind: 'md5-hash'; hash: string }
  /** Nothing: the server must trust the connection. */
  | { kind: 'none' };
