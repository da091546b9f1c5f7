/**
 * Every case of contrib-ops/<Op>/cases.jsonc, as a one-node model in onnxruntime-node, on the CPU
 * and the WebGPU EP (lavapipe on a machine without a GPU; skipped with the reason when no adapter),
 * against the expected outputs from <Op>/reference.ts. Also checks that the committed cases are what
 * make-cases.ts produces, and on which EP each node ran (ORT's profile): the placements the READMEs state.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { maxDiff } from '../test/helpers/ort.js';
import { type CaseFile, HARNESSES, parseJsonc, runCase, webgpuUnavailable } from './harness.js';
import { CASE_OPS, makeCases } from './make-cases.js';

const load = (op: string): CaseFile => {
  const file = join(import.meta.dirname, op, 'cases.jsonc');
  return parseJsonc(readFileSync(file, 'utf8'), file) as CaseFile;
};

const noWebgpu = await webgpuUnavailable();

/** Where each op must run, per EP: its own kernel, or (SSDChunkScan) its inlined body. */
const EXPECTED_PROVIDER: Record<string, Record<'cpu' | 'webgpu', string>> = {
  LinearAttention: { cpu: 'CPUExecutionProvider', webgpu: 'WebGpuExecutionProvider' },
  CausalConvWithState: { cpu: 'CPUExecutionProvider', webgpu: 'WebGpuExecutionProvider' },
};

/**
 * Known failures, run as `it.fails` (they must keep failing; remove the entry once fixed).
 * SSDChunkScan's body is ssd.ts `ssdChunked`; on WebGPU, ORT 1.30's layout transformer pushes the
 * chunk-decay Transpose through `Pad(tot, pads=[1,0], axes=[3])` and permutes the 2-element pads
 * by the rank-4 perm, ignoring `axes` → "Gather … idx=3 must be within [-2,1]". A Pad that names
 * every axis (pads [0,0,0,1,0,0,0,0], axes [0,1,2,3]) runs and matches the reference.
 */
const KNOWN_FAILURES: Record<string, Partial<Record<'cpu' | 'webgpu', string>>> = {};

it('committed cases.jsonc files equal what make-cases.ts generates', () => {
  for (const op of CASE_OPS) expect(load(op), `${op}/cases.jsonc is stale: run npx tsx contrib-ops/make-cases.ts`).toEqual(makeCases(op));
});

for (const op of CASE_OPS) {
  const file = load(op);
  const h = HARNESSES[op]!;
  for (const ep of ['cpu', 'webgpu'] as const) {
    describe(`${file.domain}::${op} on ${ep}`, () => {
      if (ep === 'webgpu' && noWebgpu) {
        it.skip(`WebGPU EP unavailable here (${noWebgpu}); install lavapipe: scripts/install-lavapipe.sh`, () => {});
        return;
      }
      const known = KNOWN_FAILURES[op]?.[ep];
      for (const cs of file.cases) {
        (known ? it.fails : it)(known ? `${cs.name} [known failure: ${known}]` : cs.name, async () => {
          const r = await runCase(h, cs, ep);
          for (const n of h.outputs) {
            const d = maxDiff(r.outputs[n]!, cs.outputs[n]!.data);
            expect(d.max, `${n}: max|Δ| at ${d.at}`).toBeLessThanOrEqual(cs.tolerance);
          }
          const want = EXPECTED_PROVIDER[op]?.[ep];
          if (want) expect(r.placement[op], JSON.stringify(r.placement)).toEqual([want]);
          // a function op is inlined: only its body's standard ops execute
          else expect(r.placement[op], JSON.stringify(r.placement)).toBeUndefined();
        });
      }
    });
  }
}
