/**
 * Aggregate decode throughput of `mamba2-onnx serve` at 1, 4, 16, 32 concurrent streams.
 *
 *   npx mamba2-onnx export --preset mamba2-130m --random-weights --out /tmp/m130
 *   npx tsx bench/serve-bench.ts /tmp/m130 [--streams 1,4,16,32] [--tokens 48] [--prompt 16] [--json]
 *
 * The server runs as a child process on loopback. Per level, every stream gets its own prompt
 * (greedy, max_tokens = --tokens). "decode tok/s" counts tokens that arrived while all streams were
 * decoding (from the last first-token to the first last-token), i.e. the batched decode rate;
 * "overall tok/s" is all tokens over the whole run, prefill and ramp included.
 */
import { parseArgs, startServe, streamCompletion, syntheticPrompt, type StreamResult } from './serve-common.js';

interface Level {
  streams: number;
  tokens: number;
  decodeTokPerS: number;
  overallTokPerS: number;
  ttftMedianMs: number;
  wallS: number;
  failed: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

function summarise(streams: number, results: StreamResult[], t0: number): Level {
  const ok = results.filter((r) => r.ok && r.tokenTimes.length > 0);
  const all = ok.flatMap((r) => r.tokenTimes);
  const tEnd = Math.max(...all);
  const tA = Math.max(...ok.map((r) => r.tokenTimes[0]!));
  const tB = Math.min(...ok.map((r) => r.tokenTimes[r.tokenTimes.length - 1]!));
  const inWindow = all.filter((t) => t > tA && t <= tB).length;
  const overall = (all.length * 1000) / (tEnd - t0);
  return {
    streams,
    tokens: all.length,
    decodeTokPerS: tB > tA && inWindow > 0 ? (inWindow * 1000) / (tB - tA) : overall,
    overallTokPerS: overall,
    ttftMedianMs: median(ok.map((r) => r.tokenTimes[0]! - r.startedAt)),
    wallS: (tEnd - t0) / 1000,
    failed: results.length - ok.length,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = args.get('_');
  if (!dir) throw new Error('usage: tsx bench/serve-bench.ts <model-dir> [--streams 1,4,16,32] [--tokens 48] [--prompt 16] [--json]');
  const levels = (args.get('streams') ?? '1,4,16,32').split(',').map(Number);
  const tokens = Number(args.get('tokens') ?? 48);
  const promptLen = Number(args.get('prompt') ?? 16);
  const extra = args.has('threads') ? ['--threads', args.get('threads')!] : [];
  const server = await startServe(dir, ['--max-batch', String(Math.max(...levels)), '--cache-mb', '0', ...extra]);
  const vocab = 50277;
  try {
    await streamCompletion(server.url, { prompt: syntheticPrompt(999, promptLen, vocab), max_tokens: 4, temperature: 0 }); // warm-up
    const out: Level[] = [];
    for (const n of levels) {
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: n }, (_, k) => streamCompletion(server.url, { prompt: syntheticPrompt(k + n * 100, promptLen, vocab), max_tokens: tokens, temperature: 0 })),
      );
      const lv = summarise(n, results, t0);
      out.push(lv);
      process.stderr.write(`${n} streams: ${lv.decodeTokPerS.toFixed(1)} tok/s decode, ${lv.overallTokPerS.toFixed(1)} overall, RSS ${(server.rss() / 2 ** 20).toFixed(0)} MiB\n`);
    }
    const single = out.find((l) => l.streams === 1)?.decodeTokPerS ?? NaN;
    if (args.has('json')) {
      process.stdout.write(`${JSON.stringify({ model: dir, tokensPerStream: tokens, promptTokens: promptLen, levels: out }, null, 2)}\n`);
      return;
    }
    const rows = out.map((l) => [
      String(l.streams),
      l.decodeTokPerS.toFixed(1),
      (l.decodeTokPerS / single).toFixed(2) + '×',
      l.overallTokPerS.toFixed(1),
      l.ttftMedianMs.toFixed(0),
      l.wallS.toFixed(1),
      String(l.failed),
    ]);
    const head = ['streams', 'decode tok/s', 'vs 1 stream', 'overall tok/s', 'TTFT p50 ms', 'wall s', 'failed'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string => `| ${r.map((c, i) => c.padStart(w[i]!)).join(' | ')} |`;
    process.stdout.write(`${[line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n')}\n`);
  } finally {
    await server.stop();
  }
}

await main();
