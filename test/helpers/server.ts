/**
 * Shared by the server tests: tiny exported models (random weights; one with a byte-level BPE
 * tokenizer.json written beside it), a server on a loopback port, and small HTTP helpers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '../../src/export/index.js';
import { Mamba2Model } from '../../src/runtime/model.js';
import { byteLevelBpe } from './tiny-tokenizers.js';
import type { ServeOptions } from '../../src/server/options.js';
import { startServer, type RunningServer } from '../../src/server/server.js';

export interface TinyModels {
  root: string;
  /** tiny preset, vocab 256, no tokenizer (token-id prompts only, no EOS). */
  plain: string;
  /** tiny shape with vocab 320 and the byte-level BPE tokenizer of tiny-tokenizers.ts (EOS = 0). */
  text: string;
  cleanup(): void;
}

/** Export the two tiny models into a fresh temp dir (≈ 0.2 s). */
export async function exportTinyModels(seed = 7): Promise<TinyModels> {
  const root = mkdtempSync(join(tmpdir(), 'm2-serve-'));
  const plain = join(root, 'plain');
  await exportModel({ preset: 'tiny', randomWeights: true, seed }, { outDir: plain });
  const preset = join(root, 'tiny-320.json');
  writeFileSync(
    preset,
    JSON.stringify({
      source: 'none (random weights only)',
      provenance: 'tiny, vocab 320 for the test tokenizer',
      format: 'mamba_ssm',
      config: {
        d_model: 64,
        d_intermediate: 0,
        n_layer: 2,
        vocab_size: 320,
        ssm_cfg: { layer: 'Mamba2', d_state: 16, d_conv: 4, expand: 2, headdim: 16, ngroups: 1, chunk_size: 16 },
        attn_layer_idx: [],
        attn_cfg: {},
        rms_norm: true,
        residual_in_fp32: true,
        fused_add_norm: true,
        pad_vocab_size_multiple: 16,
        tie_embeddings: true,
      },
    }),
  );
  const text = join(root, 'text');
  await exportModel({ preset, randomWeights: true, seed }, { outDir: text });
  const tok = byteLevelBpe();
  writeFileSync(join(text, 'tokenizer.json'), JSON.stringify(tok.json));
  writeFileSync(join(text, 'tokenizer_config.json'), JSON.stringify(tok.config));
  return { root, plain, text, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export const loadModel = (dir: string): Promise<Mamba2Model> => Mamba2Model.load(dir, { deviceState: false });

/** A server on 127.0.0.1 with a free port; fast limits for tests unless overridden. */
export function serve(model: Mamba2Model | (() => Promise<Mamba2Model>), opts: Partial<ServeOptions> = {}): Promise<RunningServer> {
  return startServer(model, { port: 0, modelName: 'tiny', prefillWindow: 8, shutdownGraceMs: 5_000, ...opts });
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** One value from /metrics (Prometheus text), e.g. metric(s, 'mamba2_active_slots'). */
export async function metric(base: string, name: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} not in /metrics:\n${text}`);
  return Number(line.slice(name.length + 1));
}

/** Poll until `check` passes (or fail after `ms`). */
export async function eventually(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
