import { Runner } from './test/helpers/model-runner.js';
const r = await Runner.open('/tmp/m130');
const t0 = performance.now();
for (const L of [512, 2048]) {
  const ids = [Array.from({ length: L }, (_, i) => (i * 7) % 50000)];
  await r.forward(ids);
  const t = performance.now();
  const out = await r.forward(ids);
  const dt = (performance.now() - t) / 1000;
  console.log(`prefill L=${L}: ${(L / dt).toFixed(0)} tok/s`);
  let s = out.states;
  const t2 = performance.now();
  const n = 32;
  for (let i = 0; i < n; i++) s = (await r.forward([[i + 1]], s)).states;
  console.log(`decode: ${(n / ((performance.now() - t2) / 1000)).toFixed(1)} tok/s`);
}
