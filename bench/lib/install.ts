// Peer proxies from Debian packages: a missing binary is `apt-get install`ed once by the harness (when root).
import { spawnSync } from 'node:child_process';
import { findBinary } from './proc.js';

/** Package → null once installed, else why it could not be: every package is tried at most once per process. */
const tried = new Map<string, string | null>();

const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

function aptGet(args: string[]): { ok: boolean; out: string } {
  // Synchronous on purpose: it runs before any measurement (run.ts asks every requested target up front, before the
  // cluster starts), and Ctrl-C reaches apt-get too since it shares our process group.
  const r = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`;
  return { ok: r.status === 0, out };
}

/** `apt-get install -y pkg`, with `apt-get update` first only when the package lists are missing or stale. */
function installPackage(pkg: string): string | null {
  if (tried.has(pkg)) return tried.get(pkg)!;
  let why: string | null = null;
  if (process.getuid?.() !== 0) why = `not root, so not installing it: run \`apt-get install -y ${pkg}\``;
  else {
    say(`installing the Debian package ${pkg} (apt-get install -y ${pkg}; once, the peer target needs it)…`);
    const t = Date.now();
    let r = aptGet(['install', '-y', pkg]);
    // An image with emptied package lists says "Unable to locate package"; stale lists fetch 404s.
    if (!r.ok && /Unable to locate package|no installation candidate|Failed to fetch|404\s+Not Found/i.test(r.out)) {
      say(`apt-get install ${pkg} failed for want of package lists: apt-get update, then again…`);
      const u = aptGet(['update']);
      r = u.ok ? aptGet(['install', '-y', pkg]) : u;
    }
    if (r.ok) say(`installed ${pkg} in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    else {
      const tail = r.out.trim().split('\n').slice(-3).join(' | ');
      why = `apt-get install -y ${pkg} failed: ${tail}`;
    }
  }
  tried.set(pkg, why);
  return why;
}

/**
 * For a target factory's `unavailable()`: null when `bin` is on PATH (or in an sbin dir), installing Debian package
 * `pkg` first when it is missing; else the reason the target has to be skipped.
 */
export function peerUnavailable(bin: string, pkg: string): string | null {
  if (findBinary(bin)) return null;
  const why = installPackage(pkg);
  if (findBinary(bin)) return null;
  return `${bin} binary not found (${why ?? `package ${pkg} installed but has no ${bin}`})`;
}

/** Absolute path of a peer's binary, after `peerUnavailable()` said it is there. */
export function peerBinary(bin: string): string {
  const p = findBinary(bin);
  if (!p) throw new Error(`${bin} binary not found`);
  return p;
}
