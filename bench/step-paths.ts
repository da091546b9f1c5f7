/**
 * What the single-step path buys and what the If around it costs: decode tokens/s of the same
 * model exported three ways (`export --paths both|step|sequence`), side by side in one process.
 *
 *   for p in both step sequence; do
 *     npx mamba2-onnx export --preset mamba2-130m --random-weights --seed 1 --logits last --paths $p --out /tmp/p130-$p
 *   done
 *   npx tsx bench/step-paths.ts /tmp/p130 [--ep cpu] [--tokens 32] [--runs 3]
 */
import { parseArgs } from 'node:util';
import { Mamba2Model, type EpName } from '../src/runtime/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    ep: { type: 'string', default: 'cpu' },
    tokens: { type: 'string', default: '32' },
    runs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '1' },
  },
});
const prefix = positionals[0];
if (!prefix) throw new Error('usage: step-paths.ts <dir-prefix> (expects <prefix>-both, -step, -sequence)');
const [tokens, runs, batch] = [Number(values.tokens), Number(values.runs), Number(values.batch)];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [];
for (const p of ['both', 'step', 'sequence']) {
  const m = await Mamba2Model.load(`${prefix}-${p}`, { ep: [values.ep as EpName] });
  const rates: number[] = [];
  for (let r = 0; r < runs + 1; r++) {
    let state = m.zeroState(batch);
    const t = performance.now();
    for (let i = 0; i < tokens; i++) {
      const out = await m.forward(
        Array.from({ length: batch }, (_, b) => [(i * 31 + b) % 1000]),
        state,
      );
      state.dispose();
      state = out.state;
    }
    state.dispose();
    if (r > 0) rates.push((tokens * batch * 1000) / (performance.now() - t)); // run 0 warms up
  }
  rows.push(`| ${p} | ${m.ep} | ${batch} | ${median(rates).toFixed(1)} |`);
  await m.release();
}
process.stdout.write(`| paths | ep | batch | decode tok/s |\n|---|---|---:|---:|\n${rows.join('\n')}\n`);
