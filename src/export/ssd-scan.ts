/**
 * SSD as a plain sequential recurrence over time with ONNX `Scan`: the baseline that shows what
 * the chunked dual form buys. Each iteration is the one-token step of the decode path (ssdStep).
 * Shapes use the glossary of ssd.ts; no chunks here (Q and NC do not apply).
 *
 *   h0 [B,H,P,N] ──────────────────────┐
 *   x [B,L,H,P], dt [B,L,H],           │  Scan over axis 1 (t = 0..L−1):
 *   Bm, Cm [B,L,G,N] ── slice t ───────┴─ ssdStep ─┬─ h_t  (carried; h_L is the final state)
 *                                                  └─ y_t [B,H,P] → stacked at axis 1 → y [B,L,H,P]
 */
import * as op from '../graph/ops.js';
import { Scan } from '../graph/ops-loop.js';
import { B, Ctx } from './blocks.js';
import type { Shape } from '../onnx/shape.js';
import type { Value } from '../graph/value.js';
import { type SsdInputs, type SsdOut, ssdStep } from './ssd.js';

export function ssdScan(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  const [H, P] = [c.nHeads, c.headDim];
  return g.scope('ssd_scan', () => {
    const A = op.Reshape(g, inp.A, [H, 1, 1]); // [H,1,1]
    const r = Scan(g, {
      states: [inp.h0], // [B,H,P,N]
      scanInputs: [inp.x, inp.dt, inp.Bm, inp.Cm].map((value) => ({ value, axis: 1 })),
      outputAxes: [1],
      body: (sg, [h], [x, dt, Bm, Cm]) => {
        // x [B,H,P]  dt [B,H]  Bm, Cm [B,G,N]  h [B,H,P,N]
        const col = (v: Value, shape: Shape) => op.Reshape(sg, v, shape);
        const s = ssdStep(new Ctx(sg, c), { x: col(x!, [B, H, P, 1]), dt: col(dt!, [B, H, 1, 1]), A, Bm: Bm!, Cm: Cm!, h0: h! });
        return { states: [s.hT], outputs: [col(s.y, [B, H, P])] }; // y_t [B,H,P]
      },
    });
    return { y: r.outputs[0]!, hT: r.states[0]! }; // y [B,L,H,P]  hT [B,H,P,N]
  });
}
