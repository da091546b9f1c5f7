/**
 * Serving RSS against the weights' size (issue 9: ≤ 1.3×), per CPU memory policy (`serve --memory`):
 * the server's resident set after start-up, and its peak (sampled every 100 ms) while `--streams`
 * concurrent greedy requests (a `--prompt`-token prompt, `--tokens` new tokens) run, next to the
 * aggregate decode rate and the time to first token, so the cost of each policy is in the same table.
 *
 *   npx tsx bench/serve-rss.ts /tmp/m130 [--streams 1,4] [--prompt 256] [--tokens 32] [--vocab 50277]
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, startServe, streamCompletion, syntheticPrompt } from './serve-common.js';

const args = parseArgs(process.argv.slice(2));
const dir = args.get('_');
if (!dir) throw new Error('usage: serve-rss.ts <model-dir> [--streams 1,4] [--prompt 256] [--tokens 32]');
const streams = (args.get('streams') ?? '1,4').split(',').map(Number);
const [promptLen, tokens, vocab] = [
  Number(args.get('prompt') ?? 256),
  Number(args.get('tokens') ?? 32),
  Number(args.get('vocab') ?? 50277),
];
const weights = statSync(join(dir, 'model.onnx.data')).size + statSync(join(dir, 'model.onnx')).size;
const MiB = 2 ** 20;

const rows: string[] = [];
for (const memory of ['fast', 'lean']) {
  const server = await startServe(dir, ['--memory', memory, '--threads', '2']);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const idle = server.rss();
    for (const n of streams) {
      let peak = server.rss();
      const sampler = setInterval(() => (peak = Math.max(peak, server.rss())), 100);
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: n }, (_, k) =>
          streamCompletion(server.url, { prompt: syntheticPrompt(k + n * 100, promptLen, vocab), max_tokens: tokens, temperature: 0 }),
        ),
      );
      const wall = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, server.rss());
      const failed = results.filter((r) => !r.ok).length;
      const generated = results.reduce((a, r) => a + r.tokenIds.length, 0);
      const ttft = results.map((r) => (r.tokenTimes[0] ?? NaN) - r.startedAt).sort((a, b) => a - b)[Math.floor(n / 2)]!;
      rows.push(
        `| ${memory} | ${n} | ${(idle / MiB).toFixed(0)} | ${(peak / MiB).toFixed(0)} | ${(peak / weights).toFixed(2)}× | ${(generated / wall).toFixed(1)} | ${ttft.toFixed(0)} ms | ${failed} |`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    await server.stop();
  }
}
process.stdout.write(
  `weights (model.onnx + data): ${(weights / MiB).toFixed(0)} MiB; prompt ${promptLen} tokens, ${tokens} new tokens per stream\n\n` +
    `| --memory | streams | RSS after start (MiB) | peak RSS (MiB) | peak ÷ weights | tok/s (all streams) | TTFT p50 | failed |\n|---|--:|--:|--:|--:|--:|--:|--:|\n${rows.join('\n')}\n`,
);
