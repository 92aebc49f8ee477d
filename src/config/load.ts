// Config from a YAML file plus CLI/env overrides → a validated Config, or path-qualified errors.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

export class ConfigError extends Error {
  readonly code = 'PGNEAR_E_CONFIG';
  constructor(
    readonly problems: string[],
    source: string,
  ) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

function pathOf(parts: PropertyKey[]): string {
  return parts
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

function describe(issues: z.core.$ZodIssue[]): string[] {
  return issues.flatMap((i) => {
    // zod reports unknown keys on the parent object; name each key where it stands.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${pathOf([...i.path, k])}: unknown setting`);
    return [`${i.path.length ? pathOf(i.path) : '(root)'}: ${i.message}`];
  });
}

/** Deep-merge `over` onto `base` (objects merge, everything else replaces). */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export function parseConfig(raw: unknown, source = 'config', overrides: Record<string, unknown> = {}): Config {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(['(root): expected a mapping of settings'], source);
  }
  const merged = merge((raw as Record<string, unknown>) ?? {}, overrides);
  const r = configSchema.safeParse(merged);
  if (!r.success) throw new ConfigError(describe(r.error.issues), source);
  const cfg = r.data;
  const problems: string[] = [];
  if (!cfg.primary) problems.push('primary: required (set primary.url, --primary or PGNEAR_PRIMARY)');
  if (cfg.tls.mode !== 'disable' && Boolean(cfg.tls.cert) !== Boolean(cfg.tls.key)) {
    problems.push('tls: cert and key must be set together');
  }
  if (cfg.tls.mode === 'require' && !cfg.tls.cert && !cfg.tls.self_signed) {
    problems.push('tls.mode: "require" needs tls.cert/tls.key or tls.self_signed: true');
  }
  cfg.routing.rules.forEach((r, i) => {
    if (r.match.pattern === undefined) return;
    try {
      new RegExp(r.match.pattern, 'i');
    } catch (e) {
      problems.push(`routing.rules[${i}].match.pattern: invalid regular expression (${(e as Error).message})`);
    }
  });
  if (problems.length) throw new ConfigError(problems, source);
  return cfg;
}

export function parseConfigText(text: string, source: string, overrides: Record<string, unknown> = {}): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new ConfigError([`YAML: ${(e as Error).message}`], source);
  }
  return parseConfig(raw, source, overrides);
}

export function loadConfigFile(path: string, overrides: Record<string, unknown> = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`], path);
  }
  return parseConfigText(text, path, overrides);
}

/** host:port → parts (IPv6 in brackets). */
export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}
