/** Shared by the bench scripts: median wall time of session.run over `runs` calls after a warm-up. */
import type * as ort from 'onnxruntime-node';

export async function medianRunMs(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number, warmup = 3): Promise<number> {
  for (let w = 0; w < warmup; w++) await s.run(feeds);
  const t: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await s.run(feeds);
    t.push(performance.now() - t0);
  }
  return [...t].sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
}
