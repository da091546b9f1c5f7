/** Plain-text formatting for CLI output: sizes, durations, aligned tables. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`; bytes below 1 KiB print exactly. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}

/** `0.42 s`, `3.1 s`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** `1234567` → `1,234,567`. */
export const formatCount = (n: number): string => n.toLocaleString('en-US');

/** A shape as `[batch, sequence, 64]` (null dims as `?`). */
export function formatDims(dims: readonly (number | string | null)[] | null): string {
  if (dims === null) return '(unknown rank)';
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/**
 * Rows as aligned columns separated by two spaces; `right` lists the columns aligned right
 * (numbers). Every line is prefixed with `indent`.
 */
export function table(rows: readonly (readonly string[])[], opts: { right?: readonly number[]; indent?: string } = {}): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  const right = new Set(opts.right ?? []);
  return rows
    .map((r) => {
      const cells = r.map((c, i) => {
        const pad = ' '.repeat((widths[i] ?? 0) - [...c].length);
        if (i === r.length - 1 && !right.has(i)) return c;
        return right.has(i) ? pad + c : c + pad;
      });
      return `${opts.indent ?? ''}${cells.join('  ')}`;
    })
    .join('\n');
}

/** The most significant digits of a small float: `2.1e-6`, `0`, `NaN`. */
export function formatDelta(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === 0) return '0';
  return x.toExponential(2);
}
