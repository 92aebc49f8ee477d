// Small statistics helpers: median (null for no data), min/max, percentiles and number formatting.

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const min = (xs: number[]) => xs.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
export const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);

/** p in [0, 100] over an ascending-sorted array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** 47878 → "47,878"; null → "–". */
export const fmtInt = (x: number | null | undefined) => (x == null ? '–' : Math.round(x).toLocaleString('en-US'));
export const fmt = (x: number | null | undefined, digits: number) => (x == null ? '–' : x.toFixed(digits));
