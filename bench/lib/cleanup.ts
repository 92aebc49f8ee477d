// Teardown registry: LIFO async cleanups on success, error and SIGINT/SIGTERM; SIGKILL to child groups on hard exit.

type CleanupFn = () => Promise<void> | void;

interface Entry {
  name: string;
  fn: CleanupFn;
}

const stack: Entry[] = [];
/** Process-group ids of detached children still alive: killed synchronously if we exit without cleaning up. */
const groups = new Set<number>();
let running: Promise<void> | null = null;
let interrupted = false;

/** True once SIGINT/SIGTERM arrived: loops stop starting new work. */
export const isInterrupted = () => interrupted;
let installed = false;

/** Register a cleanup (run last-in first-out); returns a function that unregisters it. */
export function onCleanup(name: string, fn: CleanupFn): () => void {
  const entry = { name, fn };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

export function trackGroup(pgid: number): void {
  groups.add(pgid);
}

export function untrackGroup(pgid: number): void {
  groups.delete(pgid);
}

function killGroupsSync(): void {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  groups.clear();
}

const withTimeout = (p: Promise<void>, ms: number, what: string): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(() => {
      process.stderr.write(`[bench] cleanup "${what}" timed out after ${ms} ms\n`);
      resolve();
    }, ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      (e: unknown) => {
        clearTimeout(t);
        process.stderr.write(`[bench] cleanup "${what}" failed: ${(e as Error)?.message ?? e}\n`);
        resolve();
      },
    );
  });

/** Run every registered cleanup once, newest first. Idempotent and safe to call concurrently. */
export function runCleanups(): Promise<void> {
  running ??= (async () => {
    while (stack.length > 0) {
      const { name, fn } = stack.pop()!;
      await withTimeout(Promise.resolve().then(fn), 30_000, name);
    }
    killGroupsSync();
  })();
  return running;
}

/** SIGINT/SIGTERM → clean up, exit 130/143; a second signal kills children at once; 'exit' kills stragglers. */
export function installSignalCleanup(): void {
  if (installed) return;
  installed = true;
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    count++;
    interrupted = true;
    const code = sig === 'SIGINT' ? 130 : 143;
    if (count > 1) {
      process.stderr.write('\n[bench] second signal: killing children and exiting\n');
      killGroupsSync();
      process.exit(code);
    }
    process.stderr.write(`\n[bench] ${sig}: stopping proxies and the cluster (again to force)…\n`);
    void runCleanups().finally(() => process.exit(code));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // The cluster launcher installs its own synchronous exit kill switch for postmasters.
  process.on('exit', killGroupsSync);
}
