import { expect } from 'vitest';
import { ConfigError } from '../../src/export/config.js';

/** What a test expects of a refusal: the error `fn` throws (undefined when it does not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/**
 * The error an `open` (a checkpoint reader) rejects with, or undefined when it opens: a reader that
 * opens is closed again, so a test that expected a refusal leaves nothing open.
 */
export async function openRefusal(open: () => Promise<{ close(): Promise<void> }>): Promise<unknown> {
  return open().then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
}

/** Runs `fn`, expects a ConfigError whose message contains every fragment. */
export function expectConfigError(fn: () => unknown, ...fragments: string[]): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(ConfigError);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}
