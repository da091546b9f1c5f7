/**
 * `npm start` (scripts/start.ts) for a newcomer (issue 20, finding 4): the random-weight model it
 * exports has a tokenizer, so `npm start -- --prompt "…"` generates text. A small preset stands in
 * for mamba2-130m (`--preset`), the same path otherwise; the export goes to ./out of the cwd.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');
const START = join(REPO, 'scripts/start.ts');
/** tsx's loader by path: the cwd (a temp dir, where out/ goes) has no node_modules. */
const TSX = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
const root = mkdtempSync(join(tmpdir(), 'm2o-start-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PRESET = join(root, 'small-512.json');
writeFileSync(
  PRESET,
  JSON.stringify({
    source: 'none (random weights)',
    format: 'mamba_ssm',
    config: {
      d_model: 64,
      d_intermediate: 0,
      n_layer: 2,
      vocab_size: 512,
      ssm_cfg: { layer: 'Mamba2', d_state: 16, d_conv: 4, expand: 2, headdim: 16, ngroups: 1, chunk_size: 16 },
      rms_norm: true,
      residual_in_fp32: true,
      fused_add_norm: true,
      pad_vocab_size_multiple: 16,
      tie_embeddings: true,
    },
  }),
);

function start(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', TSX, START, ...args],
      { cwd: root, timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      },
    );
  });
}

describe('npm start', () => {
  it('`npm start -- --prompt "…"` exports a random-weight model with a tokenizer and generates text from the prompt', async () => {
    const r = await start(['--preset', PRESET, '--prompt', 'Hello, Mamba', '--max-new-tokens', '8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/generating 8 tokens from a text prompt/);
    expect(r.stdout).toMatch(/\[cpu\] prefill \d+ tok .* decode \d+ tok/);
    const out = join(root, 'out', 'small-512-random');
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
    // a second run reuses the export
    const again = await start(['--preset', PRESET, '--prompt', 'again', '--max-new-tokens', '2']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('using the existing export');
    expect(readdirSync(join(root, 'out'))).toEqual(['small-512-random']);
  }, 120_000);

  it('a bad flag is one line and exit 2', async () => {
    const r = await start(['--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: .*--no-such-flag/);
  });
});
