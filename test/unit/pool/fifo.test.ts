// Fifo: order, O(1) remove by handle, unshift, idempotent removal and a large run without Array#shift.
import { describe, expect, it } from 'vitest';
import { Fifo } from '../../../src/util/fifo.js';

describe('Fifo', () => {
  it('shifts in push order and reports length', () => {
    const q = new Fifo<number>();
    expect(q.shift()).toBeUndefined();
    for (const n of [1, 2, 3]) q.push(n);
    expect(q.length).toBe(3);
    expect(q.peek()).toBe(1);
    expect([q.shift(), q.shift()]).toEqual([1, 2]);
    q.push(4);
    expect([...q]).toEqual([3, 4]);
    expect([q.shift(), q.shift(), q.shift()]).toEqual([3, 4, undefined]);
    expect(q.length).toBe(0);
  });

  it('removes head, middle and tail by handle, once', () => {
    const q = new Fifo<string>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((v) => q.push(v));
    expect(q.remove(b)).toBe(true);
    expect(q.remove(b)).toBe(false);
    expect([...q]).toEqual(['a', 'c', 'd']);
    expect(q.remove(a)).toBe(true);
    expect(q.remove(d)).toBe(true);
    expect([...q]).toEqual(['c']);
    expect(q.length).toBe(1);
    expect(q.shift()).toBe('c');
    expect(q.remove(c)).toBe(false); // already shifted
    expect(q.length).toBe(0);
    q.push('e');
    expect([...q]).toEqual(['e']);
  });

  it('unshift puts a value first; handles of another queue are refused', () => {
    const q = new Fifo<number>();
    const other = new Fifo<number>();
    const foreign = other.push(9);
    q.push(2);
    const h = q.unshift(1);
    expect([...q]).toEqual([1, 2]);
    expect(q.remove(foreign)).toBe(false);
    expect(q.remove(h)).toBe(true);
    expect([...q]).toEqual([2]);
    expect(other.length).toBe(1);
  });

  it('handles 200k entries with interleaved removals', () => {
    const q = new Fifo<number>();
    const handles = Array.from({ length: 200_000 }, (_, i) => q.push(i));
    for (let i = 1; i < handles.length; i += 2) q.remove(handles[i]);
    expect(q.length).toBe(100_000);
    let expected = 0;
    let wrong = 0;
    for (let v = q.shift(); v !== undefined; v = q.shift()) {
      if (v !== expected) wrong++;
      expected += 2;
    }
    expect(wrong).toBe(0);
    expect(expected).toBe(200_000);
  });
});
