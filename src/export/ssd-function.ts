/**
 * The `function` form: each layer's SSD is ONE node `ai.mamba2onnx::SSDChunkScan` whose definition
 * is a model-local function (FunctionProto) with the chunked dual form (ssd.ts) as its body. ONNX
 * Runtime inlines the body; a runtime with its own kernel may claim the node instead; Netron shows
 * one node per layer. contrib-ops/SSDChunkScan/README.md specifies the op. Shapes use the glossary
 * of ssd.ts.
 *
 *   x [B,L,H,P], dt [B,L,H], A [H], Bm, Cm [B,L,G,N], h0 [B,H,P,N]
 *     ─ SSDChunkScan(chunk_size, n_groups, dt_limit) ─→ y [B,L,H,P] (no D skip), hT [B,H,P,N]
 */
import type { ModelBuilder } from '../graph/builder.js';
import type { AttributeValue } from '../graph/ir.js';
import { PROJECT_DOMAIN, schemaKey } from '../graph/opset.js';
import { checkShape, type Shape } from '../graph/shape.js';
import { B, Ctx, L } from './blocks.js';
import type { Mamba2Config } from '../package/config.js';
import { ssdChunked, type SsdInputs, type SsdOut } from './ssd.js';

export const SSD_OP = 'SSDChunkScan';
export const SSD_OP_VERSION = 1;

/** The attributes the node carries: the body's chunk size, the group count, the dt clamp applied upstream. */
function ssdChunkScanAttrs(c: Mamba2Config): Record<string, AttributeValue> {
  return {
    chunk_size: { type: 'int', value: c.chunkSize },
    n_groups: { type: 'int', value: c.nGroups },
    dt_limit: { type: 'floats', value: [c.dtLimit[0], c.dtLimit[1]] },
  };
}

/** What the body was built for, per model (the body has static H, P, N, G, Q). */
const defined = new WeakMap<ModelBuilder, string>();
const signature = (c: Mamba2Config): string => `H=${c.nHeads} P=${c.headDim} N=${c.dState} G=${c.nGroups} Q=${c.chunkSize}`;

/** Defines `ai.mamba2onnx::SSDChunkScan` in `m` for config `c` (once per model). */
function defineSsdChunkScan(m: ModelBuilder, c: Mamba2Config): void {
  const sig = signature(c);
  const have = defined.get(m);
  if (have !== undefined) {
    if (have !== sig) throw new Error(`${SSD_OP}: this model already defines the function for ${have}, got ${sig}`);
    return;
  }
  if (m.localSchemas.has(schemaKey(PROJECT_DOMAIN, SSD_OP))) throw new Error(`${SSD_OP}: defined in this model by someone else`);
  const [H, P, N, G] = [c.nHeads, c.headDim, c.dState, c.nGroups];
  m.defineFunction(
    PROJECT_DOMAIN,
    SSD_OP,
    [
      { name: 'x', dtype: 'float32', shape: [B, L, H, P] },
      { name: 'dt', dtype: 'float32', shape: [B, L, H] },
      { name: 'A', dtype: 'float32', shape: [H] },
      { name: 'B', dtype: 'float32', shape: [B, L, G, N] },
      { name: 'C', dtype: 'float32', shape: [B, L, G, N] },
      { name: 'h0', dtype: 'float32', shape: [B, H, P, N] },
    ],
    Object.keys(ssdChunkScanAttrs(c)),
    (fg, [x, dt, A, Bm, Cm, h0]) => {
      const out = ssdChunked(new Ctx(fg, c), { x: x!, dt: dt!, A: A!, Bm: Bm!, Cm: Cm!, h0: h0! });
      return [out.y, out.hT];
    },
    `Mamba-2 SSD scan (chunked dual form, Q=${c.chunkSize}): y = scan of h_t = exp(dt_t·A)·h_{t-1} + dt_t·x_t⊗B_t, y_t = h_t·C_t. See contrib-ops/SSDChunkScan.`,
  );
  defined.set(m, sig);
}

export function ssdFunction(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  defineSsdChunkScan(g.model, c);
  const [H, P, N, G] = [c.nHeads, c.headDim, c.dState, c.nGroups];
  const [b, l] = [inp.x.shape[0]!, inp.x.shape[1]!];
  const want: [keyof SsdInputs, Shape][] = [
    ['x', [b, l, H, P]],
    ['dt', [b, l, H]],
    ['A', [H]],
    ['Bm', [b, l, G, N]],
    ['Cm', [b, l, G, N]],
    ['h0', [b, H, P, N]],
  ];
  for (const [k, s] of want) checkShape(inp[k].shape, s, g.nodeName(SSD_OP), `${k} (${inp[k].name})`);
  const [y, hT] = g.node(SSD_OP, [inp.x, inp.dt, inp.A, inp.Bm, inp.Cm, inp.h0], {
    domain: PROJECT_DOMAIN,
    attrs: ssdChunkScanAttrs(c),
    outputs: [
      { dtype: 'float32', shape: inp.x.shape }, // [B,L,H,P]
      { dtype: 'float32', shape: inp.h0.shape }, // [B,H,P,N]
    ],
  });
  return { y: y!, hT: hT! };
}
