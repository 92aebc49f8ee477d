// O(1) FIFO queue (doubly linked list): push, unshift, shift, peek and remove-by-handle, never Array#shift.

/** A queued entry; keep it to remove the value later in O(1). */
export interface FifoHandle<T> {
  readonly value: T;
}

interface Node<T> extends FifoHandle<T> {
  prev: Node<T> | null;
  next: Node<T> | null;
  /** The queue holding this node, null once shifted or removed (makes remove idempotent). */
  owner: Fifo<T> | null;
}

export class Fifo<T> {
  private head: Node<T> | null = null;
  private tail: Node<T> | null = null;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Append at the back (newest). */
  push(value: T): FifoHandle<T> {
    const n: Node<T> = { value, prev: this.tail, next: null, owner: this };
    if (this.tail) this.tail.next = n;
    else this.head = n;
    this.tail = n;
    this.count++;
    return n;
  }

  /** Insert at the front (it becomes the oldest), e.g. to put back an entry that could not be served. */
  unshift(value: T): FifoHandle<T> {
    const n: Node<T> = { value, prev: null, next: this.head, owner: this };
    if (this.head) this.head.prev = n;
    else this.tail = n;
    this.head = n;
    this.count++;
    return n;
  }

  /** Remove and return the oldest value. */
  shift(): T | undefined {
    const n = this.head;
    if (!n) return undefined;
    this.unlink(n);
    return n.value;
  }

  /** The oldest value, left in place. */
  peek(): T | undefined {
    return this.head?.value;
  }

  /** Remove an entry wherever it is; false when it already left this queue. */
  remove(handle: FifoHandle<T>): boolean {
    const n = handle as Node<T>;
    if (n.owner !== this) return false;
    this.unlink(n);
    return true;
  }

  /** Oldest first. Do not mutate the queue while iterating. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let n = this.head; n; n = n.next) yield n.value;
  }

  private unlink(n: Node<T>): void {
    if (n.prev) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = n.next = null;
    n.owner = null;
    this.count--;
  }
}
