/**
 * SSD as a plain sequential recurrence over time with ONNX `Scan`: the baseline that shows what
 * the chunked dual form buys. Each iteration is the one-token step of the decode path (ssdStep).
 *
 *   h0 [B,H,P,N] ──────────────────────┐
 *   x [B,L,H,P], dt [B,L,H],           │  Scan over axis 1 (t = 0..L−1):
 *   Bm, Cm [B,L,G,N] ── slice t ───────┴─ ssdStep ─┬─ h_t  (carried; h_L is the final state)
 *                                                  └─ y_t [B,H,P] → stacked at axis 1 → y [B,L,H,P]
 */
import * as op from '../graph/ops-loop.js';
import { Ctx } from './blocks.js';
import { type SsdInputs, type SsdOut, ssdStep } from './ssd.js';

export function ssdScan(ctx: Ctx, inp: SsdInputs): SsdOut {
  const { g, c } = ctx;
  return g.scope('ssd_scan', () => {
    const r = op.Scan(g, {
      states: [inp.h0], // [B,H,P,N]
      scanInputs: [inp.x, inp.dt, inp.Bm, inp.Cm].map((value) => ({ value, axis: 1 })),
      outputAxes: [1],
      body: (sg, [h], [x, dt, Bm, Cm]) => {
        // x [B,H,P]  dt [B,H]  Bm, Cm [B,G,N]  h [B,H,P,N]
        const s = ssdStep(new Ctx(sg, c), { x: x!, dt: dt!, A: inp.A, Bm: Bm!, Cm: Cm!, h0: h! });
        return { states: [s.hT], outputs: [s.y] };
      },
    });
    return { y: r.outputs[0]!, hT: r.states[0]! }; // y [B,L,H,P]  hT [B,H,P,N]
  });
}
