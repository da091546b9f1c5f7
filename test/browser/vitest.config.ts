/**
 * `npm run test:browser`: the page and the browser entry in Debian's headless Chromium. Kept apart
 * from `npm test` (these files end in .spec.ts, which the main config does not include).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.spec.ts'],
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
