/**
 * Aggregate decode throughput of `mamba2-onnx serve` at 1, 4, 16, 32 concurrent streams.
 *
 *   npx mamba2-onnx export --preset mamba2-130m --random-weights --out /tmp/m130
 *   npx tsx bench/serve-bench.ts /tmp/m130 [--streams 1,4,16,32] [--tokens 48] [--prompt 16] [--threads N] [--memory fast|lean] [--json]
 *
 * The server runs as a child process on loopback. Per level, every stream gets its own prompt
 * (greedy, max_tokens = --tokens). "decode tok/s" counts tokens that arrived while all streams were
 * decoding (from the last first-token to the first last-token), i.e. the batched decode rate;
 * "overall tok/s" is all tokens over the whole run, prefill and ramp included. "model ceiling" is
 * the same batch size through Mamba2Model.forward alone (no server, no HTTP; median of 8 steps):
 * the most the server could reach.
 */
import { Mamba2Model } from '../src/runtime/index.js';
import { parseArgs, startServe, streamCompletion, syntheticPrompt, type StreamResult } from './serve-common.js';

interface Level {
  streams: number;
  ceilingTokPerS: number;
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

/** Decode tok/s of bare single-token forward calls at each batch size (in this process). */
async function modelCeiling(dir: string, levels: readonly number[], threads: number | undefined): Promise<Map<number, number>> {
  const m = await Mamba2Model.load(dir, { deviceState: false, ...(threads !== undefined ? { intraOpNumThreads: threads } : {}) });
  const out = new Map<number, number>();
  try {
    for (const B of levels) {
      let state = m.zeroState(B);
      const ids = Array.from({ length: B }, (_, r) => [r + 1]);
      const times: number[] = [];
      for (let k = 0; k < 10; k++) {
        const t0 = performance.now();
        const f = await m.forward(ids, state);
        if (k >= 2) times.push(performance.now() - t0);
        state.dispose();
        state = f.state;
      }
      out.set(B, (B * 1000) / median(times));
    }
  } finally {
    await m.release();
  }
  return out;
}

function summarise(streams: number, results: StreamResult[], t0: number, ceiling: number): Level {
  const ok = results.filter((r) => r.ok && r.tokenTimes.length > 0);
  const all = ok.flatMap((r) => r.tokenTimes);
  const tEnd = Math.max(...all);
  const tA = Math.max(...ok.map((r) => r.tokenTimes[0]!));
  const tB = Math.min(...ok.map((r) => r.tokenTimes[r.tokenTimes.length - 1]!));
  const inWindow = all.filter((t) => t > tA && t <= tB).length;
  const overall = (all.length * 1000) / (tEnd - t0);
  return {
    streams,
    ceilingTokPerS: ceiling,
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
  if (!dir)
    throw new Error(
      'usage: tsx bench/serve-bench.ts <model-dir> [--streams 1,4,16,32] [--tokens 48] [--prompt 16] [--vocab 50277] [--threads N] [--memory fast|lean] [--json]',
    );
  const levels = (args.get('streams') ?? '1,4,16,32').split(',').map(Number);
  const tokens = Number(args.get('tokens') ?? 48);
  const promptLen = Number(args.get('prompt') ?? 16);
  const threads = args.has('threads') ? Number(args.get('threads')) : undefined;
  const extra = [
    ...(threads !== undefined ? ['--threads', String(threads)] : []),
    ...(args.has('memory') ? ['--memory', args.get('memory')!] : []),
  ];
  const ceiling = await modelCeiling(dir, levels, threads);
  const server = await startServe(dir, ['--max-batch', String(Math.max(...levels)), '--cache-mb', '0', ...extra]);
  const vocab = Number(args.get('vocab') ?? 50277); // mamba2-130m's real vocab
  try {
    await streamCompletion(server.url, { prompt: syntheticPrompt(999, promptLen, vocab), max_tokens: 4, temperature: 0 }); // warm-up
    const out: Level[] = [];
    for (const n of levels) {
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: n }, (_, k) =>
          streamCompletion(server.url, { prompt: syntheticPrompt(k + n * 100, promptLen, vocab), max_tokens: tokens, temperature: 0 }),
        ),
      );
      const lv = summarise(n, results, t0, ceiling.get(n)!);
      out.push(lv);
      process.stderr.write(
        `${n} streams: ${lv.decodeTokPerS.toFixed(1)} tok/s decode, ${lv.overallTokPerS.toFixed(1)} overall, RSS ${(server.rss() / 2 ** 20).toFixed(0)} MiB\n`,
      );
    }
    const single = out.find((l) => l.streams === 1)?.decodeTokPerS ?? NaN;
    if (args.has('json')) {
      process.stdout.write(`${JSON.stringify({ model: dir, tokensPerStream: tokens, promptTokens: promptLen, levels: out }, null, 2)}\n`);
      return;
    }
    const rows = out.map((l) => [
      String(l.streams),
      l.decodeTokPerS.toFixed(1),
      `${(l.decodeTokPerS / single).toFixed(2)}×`,
      l.ceilingTokPerS.toFixed(1),
      `${(l.ceilingTokPerS / out[0]!.ceilingTokPerS).toFixed(2)}×`,
      l.overallTokPerS.toFixed(1),
      l.ttftMedianMs.toFixed(0),
      l.wallS.toFixed(1),
      String(l.failed),
    ]);
    const head = [
      'streams',
      'decode tok/s',
      'vs 1 stream',
      'model ceiling tok/s',
      'ceiling vs B=1',
      'overall tok/s',
      'TTFT p50 ms',
      'wall s',
      'failed',
    ];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string => `| ${r.map((c, i) => c.padStart(w[i]!)).join(' | ')} |`;
    process.stdout.write(`${[line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n')}\n`);
  } finally {
    await server.stop();
  }
}

await main();
