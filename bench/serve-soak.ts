/**
 * A bounded soak of `mamba2-onnx serve` on loopback: 32 client loops for N minutes, a mix of
 * streaming and JSON requests, greedy and seeded sampling, follow-up prompts (previous prompt +
 * answer + more: prefix-cache hits) and repeated prompts, and a few deliberate mid-stream
 * disconnects. Pass: zero failed requests and a flat server
 * RSS after warm-up.
 *
 *   npx tsx bench/serve-soak.ts /tmp/m130 [--minutes 3] [--streams 32] [--warmup-s 60] [--vocab 50277] [--cache-mb 256] [--json]
 */
import { parseArgs, startServe, streamCompletion, syntheticPrompt } from './serve-common.js';

interface Sample {
  t: number;
  rssMiB: number;
}

/** A small deterministic PRNG per client loop. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function jsonCompletion(
  url: string,
  body: Record<string, unknown>,
): Promise<{ ok: boolean; error?: string; tokens: number; ids: number[] }> {
  try {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', ...body }),
    });
    const json = (await res.json()) as {
      usage?: { completion_tokens: number };
      error?: { message: string };
      choices?: { token_ids: number[] }[];
    };
    if (res.status !== 200) return { ok: false, error: `${res.status} ${json.error?.message ?? ''}`, tokens: 0, ids: [] };
    return { ok: true, tokens: json.usage?.completion_tokens ?? 0, ids: json.choices?.[0]?.token_ids ?? [] };
  } catch (e) {
    return { ok: false, error: (e as Error).message, tokens: 0, ids: [] };
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = args.get('_');
  if (!dir)
    throw new Error('usage: tsx bench/serve-soak.ts <model-dir> [--minutes 3] [--streams 32] [--warmup-s 60] [--vocab 50277] [--json]');
  const minutes = Number(args.get('minutes') ?? 3);
  const streams = Number(args.get('streams') ?? 32);
  const warmupS = Number(args.get('warmup-s') ?? 60);
  const VOCAB = Number(args.get('vocab') ?? 50277); // mamba2-130m's real vocab
  const SHARED = syntheticPrompt(4242, 40, VOCAB); // a prompt many requests repeat
  const server = await startServe(dir, ['--max-batch', String(streams), '--cache-mb', args.get('cache-mb') ?? '256']);
  const t0 = performance.now();
  const deadline = t0 + minutes * 60_000;
  const counts = { ok: 0, failed: 0, aborted: 0, tokens: 0, streamed: 0, json: 0 };
  const failures: string[] = [];
  const samples: Sample[] = [];
  const sampler = setInterval(() => samples.push({ t: (performance.now() - t0) / 1000, rssMiB: server.rss() / 2 ** 20 }), 5_000);

  const client = async (k: number): Promise<void> => {
    const r = rng(k + 1);
    let last: number[] | undefined; // the previous prompt + answer, for a follow-up
    while (performance.now() < deadline) {
      const own = syntheticPrompt(k * 1000 + Math.floor(r() * 1e6), 4 + Math.floor(r() * 60), VOCAB);
      const pick = r();
      const prompt = pick < 0.3 && last && last.length < 400 ? [...last, ...own.slice(0, 4)] : pick < 0.45 ? SHARED : own;
      const body: Record<string, unknown> = {
        prompt,
        max_tokens: 8 + Math.floor(r() * 40),
        temperature: r() < 0.5 ? 0 : 0.8,
        ...(r() < 0.5 ? { seed: k } : {}),
      };
      if (r() < 0.7) {
        const abortEarly = r() < 0.05;
        const ctl = new AbortController();
        const res = streamCompletion(server.url, { ...body, ...(abortEarly ? { max_tokens: 2000 } : {}) }, ctl.signal);
        if (abortEarly) setTimeout(() => ctl.abort(), 1_000 + r() * 2_000);
        const out = await res;
        counts.streamed++;
        counts.tokens += out.tokenTimes.length;
        last = out.ok ? [...prompt, ...out.tokenIds] : undefined;
        if (out.ok) counts.ok++;
        else if (abortEarly && ctl.signal.aborted) counts.aborted++;
        else {
          counts.failed++;
          failures.push(`stream: ${out.status} ${out.error ?? ''}`.slice(0, 200));
        }
      } else {
        const out = await jsonCompletion(server.url, body);
        counts.json++;
        counts.tokens += out.tokens;
        last = out.ok ? [...prompt, ...out.ids] : undefined;
        if (out.ok) counts.ok++;
        else {
          counts.failed++;
          failures.push(`json: ${out.error ?? ''}`.slice(0, 200));
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: streams }, (_, k) => client(k)));
  } finally {
    clearInterval(sampler);
  }
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const exit = await server.stop();
  const wallS = (performance.now() - t0) / 1000;
  const after = samples.filter((s) => s.t >= warmupS);
  const slope = linearSlope(after.map((s) => [s.t / 60, s.rssMiB]));
  const pick = (name: string): number =>
    Number(/^(\S+) (\S+)$/m.exec(metrics.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2] ?? NaN);
  const report = {
    model: dir,
    minutes,
    streams,
    wallS: Math.round(wallS),
    requests: counts,
    failures: failures.slice(0, 10),
    tokensPerSecond: counts.tokens / wallS,
    cacheHits: pick('mamba2_prefix_cache_hits_total'),
    cacheMisses: pick('mamba2_prefix_cache_misses_total'),
    serverExitCode: exit,
    rssMiB: {
      warmupS,
      firstAfterWarmup: after[0]?.rssMiB,
      maxAfterWarmup: Math.max(...after.map((s) => s.rssMiB)),
      last: after[after.length - 1]?.rssMiB,
      slopeMiBPerMin: slope,
      samples: samples.map((s) => [Math.round(s.t), Math.round(s.rssMiB)]),
    },
  };
  if (args.has('json')) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(
      `${counts.ok} ok, ${counts.failed} failed, ${counts.aborted} aborted on purpose (${counts.streamed} streamed, ${counts.json} JSON) in ${report.wallS} s; ` +
        `${report.tokensPerSecond.toFixed(1)} tok/s; cache ${report.cacheHits} hits / ${report.cacheMisses} misses; server exit ${exit}\n` +
        `RSS after ${warmupS} s warm-up: first ${report.rssMiB.firstAfterWarmup?.toFixed(0)} MiB, max ${report.rssMiB.maxAfterWarmup.toFixed(0)} MiB, ` +
        `last ${report.rssMiB.last?.toFixed(0)} MiB, slope ${slope.toFixed(1)} MiB/min\n`,
    );
    for (const f of failures.slice(0, 10)) process.stdout.write(`  failure: ${f}\n`);
  }
  if (counts.failed > 0 || exit !== 0) process.exitCode = 1;
}

/** Least-squares slope of y over x. */
function linearSlope(points: [number, number][]): number {
  if (points.length < 2) return NaN;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const num = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

await main();
