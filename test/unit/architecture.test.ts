// Dependency direction between src/ layers, process globals confined to main.ts, file headers and sizes.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : /\.(ts|mts|cts)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

interface SrcFile {
  /** Path relative to the repo root with forward slashes, e.g. "src/protocol/framer.ts". */
  path: string;
  text: string;
}

const FILES: SrcFile[] = walk(SRC).map((p) => ({
  path: relative(ROOT, p).split('\\').join('/'),
  text: readFileSync(p, 'utf8'),
}));

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

type Dep = { kind: 'builtin'; name: string } | { kind: 'src'; path: string } | { kind: 'package'; name: string };

/** Every module specifier (static, type-only, re-export, dynamic import, require) of a source text. */
function specifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function classify(from: string, spec: string): Dep {
  if (BUILTINS.has(spec) || spec.startsWith('node:')) return { kind: 'builtin', name: spec.replace(/^node:/, '') };
  if (spec.startsWith('.')) {
    const abs = resolve(ROOT, dirname(from), spec).replace(/\.js$/, '.ts');
    return { kind: 'src', path: relative(ROOT, abs).split('\\').join('/') };
  }
  return { kind: 'package', name: spec };
}

const deps = (f: SrcFile): Dep[] => specifiers(f.text).map((s) => classify(f.path, s));
const under = (dir: string) => (p: string) => p.startsWith(`${dir}/`);
const filesUnder = (dir: string) => FILES.filter((f) => under(dir)(f.path));
const fmt = (f: SrcFile, d: Dep) => `${f.path} → ${d.kind === 'src' ? d.path : `${d.kind}:${d.name}`}`;

/** Strip comments (block and line; "://" in URLs is not a comment), keeping line numbers, so prose does not trip the greps. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, '')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

describe('the checker itself', () => {
  it('finds static, type-only, multi-line, re-export, side-effect and dynamic imports', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../pool/b.js';",
      'import {\n  c,\n  d,\n} from "node:net";',
      "export * from './e.js';",
      "import 'side-effect';",
      "const m = await import('node:tls');",
    ].join('\n');
    expect(specifiers(text)).toEqual(['./a.js', '../pool/b.js', 'node:net', './e.js', 'side-effect', 'node:tls']);
    expect(classify('src/protocol/x.ts', '../pool/b.js')).toEqual({ kind: 'src', path: 'src/pool/b.ts' });
    expect(classify('src/protocol/x.ts', 'timers')).toEqual({ kind: 'builtin', name: 'timers' });
    expect(classify('src/protocol/x.ts', 'zod')).toEqual({ kind: 'package', name: 'zod' });
  });

  it('sees the source tree', () => {
    expect(FILES.map((f) => f.path)).toContain('src/protocol/framer.ts');
    expect(FILES.map((f) => f.path)).toContain('src/main.ts');
  });

  it('comment stripping keeps URLs and code', () => {
    expect(code("const u = 'postgres://x'; // process.env here\n/* process.argv */ f();")).toBe(
      "const u = 'postgres://x'; \n f();",
    );
  });
});

describe('dependency direction', () => {
  it('src/protocol/** imports only node builtins, src/protocol/** and src/util/**', () => {
    const bad = filesUnder('src/protocol').flatMap((f) =>
      deps(f)
        .filter(
          (d) =>
            !(
              d.kind === 'builtin' ||
              (d.kind === 'src' && (under('src/protocol')(d.path) || under('src/util')(d.path)))
            ),
        )
        .map((d) => fmt(f, d)),
    );
    expect(bad).toEqual([]);
  });

  it('src/pool/** never imports src/routing/**, src/session/**, src/observability/**', () => {
    const banned = ['src/routing', 'src/session', 'src/observability'].map(under);
    const bad = filesUnder('src/pool').flatMap((f) =>
      deps(f)
        .filter((d) => d.kind === 'src' && banned.some((b) => b(d.path)))
        .map((d) => fmt(f, d)),
    );
    expect(bad).toEqual([]);
  });

  it('src/routing/** imports no net/tls/timers modules and nothing from pool/session', () => {
    const bannedBuiltins = new Set(['net', 'tls', 'timers', 'timers/promises']);
    const bannedDirs = ['src/pool', 'src/session'].map(under);
    const bad = filesUnder('src/routing').flatMap((f) =>
      deps(f)
        .filter(
          (d) =>
            (d.kind === 'builtin' && bannedBuiltins.has(d.name)) ||
            (d.kind === 'src' && bannedDirs.some((b) => b(d.path))),
        )
        .map((d) => fmt(f, d)),
    );
    expect(bad).toEqual([]);
  });

  it('every relative import points at an existing src file', () => {
    const paths = new Set(FILES.map((f) => f.path));
    const bad = FILES.flatMap((f) =>
      deps(f)
        .filter((d) => d.kind === 'src' && under('src')(d.path) && !paths.has(d.path))
        .map((d) => fmt(f, d)),
    );
    expect(bad).toEqual([]);
  });
});

describe('process globals only in src/main.ts', () => {
  /** Offending uses in one file: [line number, line text]. */
  function uses(f: SrcFile): string[] {
    const out: string[] = [];
    const lines = code(f.text).split('\n');
    const dev = under('src/devcluster')(f.path);
    lines.forEach((line, i) => {
      const hits: string[] = [];
      if (/\bprocess\.argv\b/.test(line)) hits.push('process.argv');
      for (const m of line.matchAll(/\bprocess\.env\b(\s*(?:\.\s*(\w+)|\[\s*['"](\w+)['"]\s*\]))?/g)) {
        const name = m[2] ?? m[3];
        if (!dev) hits.push(`process.env${name ? `.${name}` : ''}`);
      }
      for (const m of line.matchAll(/\bprocess\.on\(\s*(['"]?)([\w-]*)\1/g)) {
        if (!(dev && m[2] === 'exit')) hits.push(`process.on('${m[2]}')`);
      }
      for (const h of hits) out.push(`${f.path}:${i + 1} ${h}`);
    });
    return out;
  }

  it('the detector catches what it should and allows the devcluster exceptions', () => {
    const f = (path: string, text: string) => uses({ path, text });
    expect(f('src/app.ts', 'const x = process.env.FOO;')).toEqual(['src/app.ts:1 process.env.FOO']);
    expect(f('src/app.ts', "process.on('SIGTERM', h);")).toEqual(["src/app.ts:1 process.on('SIGTERM')"]);
    expect(f('src/app.ts', 'f(process.argv);')).toEqual(['src/app.ts:1 process.argv']);
    expect(
      f('src/devcluster/a.ts', "process.env.PGNEAR_PG_BIN; process.env['PGNEAR_PG_BIN']; process.on('exit', k);"),
    ).toEqual([]);
    // The launcher builds its children's environment from ours.
    expect(f('src/devcluster/a.ts', 'Object.entries(process.env)')).toEqual([]);
    expect(f('src/app.ts', '// process.env.FOO in a comment')).toEqual([]);
  });

  it('no file but src/main.ts reads process.argv/process.env or calls process.on(', () => {
    const bad = FILES.filter((f) => f.path !== 'src/main.ts').flatMap(uses);
    expect(bad).toEqual([]);
  });
});

describe('file hygiene', () => {
  it('every src file starts with a one-line // header comment (after an optional #! line)', () => {
    const bad = FILES.filter((f) => {
      const lines = f.text.split('\n');
      const first = lines[0].startsWith('#!') ? lines[1] : lines[0];
      return !/^\/\/ \S.*\S/.test(first ?? '');
    }).map((f) => f.path);
    expect(bad).toEqual([]);
  });

  it('every src file has fewer than 400 lines', () => {
    const bad = FILES.map((f) => ({ path: f.path, lines: f.text.replace(/\n$/, '').split('\n').length }))
      .filter((x) => x.lines >= 400)
      .map((x) => `${x.path}: ${x.lines} lines`);
    expect(bad).toEqual([]);
  });
});
