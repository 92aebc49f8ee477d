// Held client messages: bounds, and replayed frames that sit back to back leaving as one write.
import { describe, expect, it } from 'vitest';
import { RequestQueue } from '../../../src/session/request-queue.js';

/** Frames of `sizes` bytes carved back to back from one chunk (as the client scanner delivers them). */
function carve(...sizes: number[]): Buffer[] {
  const chunk = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  return sizes.map((n, i) => {
    chunk.fill(0x41 + i, at, at + n);
    return chunk.subarray(at, (at += n));
  });
}

describe('RequestQueue replay runs', () => {
  it('frames back to back in one chunk leave as one buffer with exactly their bytes', () => {
    const q = new RequestQueue();
    const [p, b, e, s] = carve(10, 20, 5, 5);
    expect(q.runAdd(p!)).toBeNull();
    expect(q.runAdd(b!)).toBeNull();
    expect(q.runAdd(e!)).toBeNull();
    expect(q.runAdd(s!)).toBeNull();
    expect(q.runOut()!.toString()).toBe('A'.repeat(10) + 'B'.repeat(20) + 'C'.repeat(5) + 'D'.repeat(5));
    expect(q.runOut()).toBeNull();
  });

  it('a gap (a frame not forwarded) or another chunk ends the run, which is returned to be written first', () => {
    const q = new RequestQueue();
    const [a, , c] = carve(3, 4, 5); // the middle one was answered by pgnear, not forwarded
    const [other] = carve(2);
    expect(q.runAdd(a!)).toBeNull();
    expect(q.runAdd(c!)!.toString()).toBe('AAA');
    expect(q.runAdd(other!)!.toString()).toBe('CCCCC');
    expect(q.runOut()!.toString()).toBe('AA');
  });

  it('a single frame comes back as the same buffer (no new view)', () => {
    const q = new RequestQueue();
    const [a] = carve(7);
    q.runAdd(a!);
    expect(q.runOut()).toBe(a);
  });
});

describe('RequestQueue bounds', () => {
  it('refuses more than 10,000 held messages', () => {
    const q = new RequestQueue();
    const f = Buffer.alloc(5);
    for (let i = 0; i < 10_000; i++) q.push(f);
    expect(() => q.push(f)).toThrow(/too many messages/);
  });
});
