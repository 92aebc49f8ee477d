// Copies of bytes that outlive the message they came from.

/**
 * An exact-size copy outside Buffer's shared 8 KB pool: a small long-lived slice of the pool (a SCRAM key, a
 * statement's parameter types) would keep a whole slab alive, per client.
 */
export function ownedCopy(b: Uint8Array): Buffer {
  return Buffer.from(new Uint8Array(b).buffer);
}
