/**
 * package.json's `engines.node` is a promise: every production dependency must accept its floor,
 * and CI runs on that floor (.ci/run checks the running Node against it). Dev dependencies only
 * need the Node that CI runs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };

describe('engines.node', () => {
  const floor = semver.minVersion(pkg.engines.node)!;

  it('is a range with a floor', () => {
    expect(floor, `engines.node = ${pkg.engines.node}`).not.toBeNull();
  });

  it('every production dependency accepts the floor', () => {
    const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const dirs = out.split('\n').filter((d) => d.includes('node_modules'));
    expect(dirs.length).toBeGreaterThan(20);
    const refusing: string[] = [];
    for (const dir of dirs) {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
        engines?: { node?: string };
      };
      const range = p.engines?.node;
      if (range && !semver.satisfies(floor, range)) refusing.push(`${p.name}@${p.version} wants node ${range}`);
    }
    expect(refusing, `floor ${floor.version}`).toEqual([]);
  });
});
