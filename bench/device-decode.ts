/**
 * Decode with the state on the device, side by side in one process: the onnxruntime-node backend
 * (states through the host on CUDA), the C-API backend through Mamba2Model, and the C-API
 * DeviceDecodeRunner (ping-pong state buffers bound once per batch size), eager and replaying
 * captured graphs. Each runner's logits are checked against the first one's on the same ids
 * before it is timed (max |Δ| in the table).
 *
 *   npx mamba2-onnx export --preset mamba2-130m --random-weights --seed 1 --logits last --paths step --out /tmp/d-step
 *   npx tsx bench/device-decode.ts /tmp/d-step [--ep cuda] [--batch 1,16] [--tokens 256] [--runs 3] [--json out.jsonl]
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DeviceDecodeRunner } from '../src/runtime/capi/device-runner.js';
import { Mamba2Model, type EpName, type Mamba2State } from '../src/runtime/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    ep: { type: 'string', default: 'cuda' },
    batch: { type: 'string', default: '1,16' },
    tokens: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
    check: { type: 'string', default: '8' },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: device-decode.ts <step-only model dir> [--ep cuda] [--batch 1,16] [--tokens N] [--runs R]');
const ep = values.ep as EpName;
const batches = values.batch.split(',').map(Number);
const [tokens, runs, checkSteps] = [Number(values.tokens), Number(values.runs), Number(values.check)];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const vocab = Math.min(
  1000,
  (JSON.parse(readFileSync(join(dir, 'mamba2-onnx.json'), 'utf8')) as { config: { realVocabSize: number } }).config.realVocabSize,
);
const idsAt = (i: number, B: number): number[] => Array.from({ length: B }, (_, b) => (i * 31 + b * 7) % vocab);

/** A decoder: begin from zeros at batch B, then step(ids) → last-position logits [B·V]. */
interface Decoder {
  name: string;
  begin(B: number): Promise<void>;
  step(ids: number[]): Promise<Float32Array>;
  end(): Promise<void>;
  release(): Promise<void>;
}

async function modelDecoder(name: string, backend: 'node' | 'capi'): Promise<Decoder> {
  const m = await Mamba2Model.load(dir!, { ep: [ep], backend });
  let state: Mamba2State | undefined;
  return {
    name: `${name} (${m.ep}${m.deviceState ? ', device state' : ''})`,
    begin: async (B) => {
      state = m.zeroState(B);
    },
    step: async (ids) => {
      const out = await m.forward(
        ids.map((id) => [id]),
        state,
      );
      state?.dispose();
      state = out.state;
      return out.logits.data;
    },
    end: async () => state?.dispose(),
    release: () => m.release(),
  };
}

async function runnerDecoder(
  name: string,
  graphCapture: boolean,
  extra: { syncSteps?: boolean; cudaCopies?: boolean } = {},
): Promise<Decoder> {
  const r = await DeviceDecodeRunner.load(dir!, { ep: [ep], graphCapture, ...extra });
  const how = [
    r.ep,
    r.capturesGraph ? 'captured' : '',
    extra.syncSteps ? 'sync steps' : '',
    r.copyNote || extra.cudaCopies === false ? 'ORT copies' : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (r.copyNote) process.stderr.write(`note: ${r.copyNote}\n`);
  return {
    name: `${name} (${how})`,
    begin: (B) => r.begin(undefined, B),
    step: async (ids) => (await r.step(ids)).data,
    end: async () => {},
    release: () => r.release(),
  };
}

const makers: [string, () => Promise<Decoder>][] = [
  ['node', () => modelDecoder('onnxruntime-node', 'node')],
  ['capi', () => modelDecoder('C API, Mamba2Model', 'capi')],
  ['runner', () => runnerDecoder('C API, DeviceDecodeRunner', false)],
  ['runner-ortcopies', () => runnerDecoder('C API, DeviceDecodeRunner', false, { cudaCopies: false })],
  ['capture', () => runnerDecoder('C API, DeviceDecodeRunner + graph capture', true)],
  ['capture-sync', () => runnerDecoder('C API, DeviceDecodeRunner + graph capture', true, { syncSteps: true })],
  ['capture-ortcopies', () => runnerDecoder('C API, DeviceDecodeRunner + graph capture', true, { cudaCopies: false })],
];
const only = values.only?.split(',');

const rows: string[] = [];
process.stdout.write(
  `decode, ${tokens} tokens per run, median of ${runs}\n| decoder | batch | tok/s (all rows) | ms per step | max |Δ logits| vs first |\n|---|---:|---:|---:|---:|\n`,
);
/** Rows print as they come (a crash later still leaves them). */
const print = (row: string): void => {
  rows.push(row);
  process.stdout.write(`${row}\n`);
};
const reference = new Map<number, Float32Array[]>();
for (const [key, make] of makers) {
  if (only && !only.includes(key)) continue;
  let d: Decoder;
  try {
    d = await make();
  } catch (e) {
    print(`| ${key} | – | – | – | failed: ${(e as Error).message.split('\n')[0]} |`);
    continue;
  }
  for (const B of batches) {
    try {
      // correctness first: the first checkSteps steps against the first decoder's logits
      await d.begin(B);
      let maxDiff = 0;
      const ref = reference.get(B);
      const mine: Float32Array[] = [];
      for (let i = 0; i < checkSteps; i++) {
        const l = (await d.step(idsAt(i, B))).slice();
        mine.push(l);
        if (ref) for (let j = 0; j < l.length; j++) maxDiff = Math.max(maxDiff, Math.abs(l[j]! - ref[i]![j]!));
      }
      await d.end();
      if (!ref) reference.set(B, mine);
      const rates: number[] = [];
      for (let r = 0; r < runs; r++) {
        await d.begin(B);
        for (let i = 0; i < 4; i++) await d.step(idsAt(i, B)); // warm (capture happens here)
        const t = performance.now();
        for (let i = 0; i < tokens; i++) await d.step(idsAt(i, B));
        rates.push((tokens * B * 1000) / (performance.now() - t));
        await d.end();
      }
      const rate = median(rates);
      print(
        `| ${d.name} | ${B} | ${rate.toFixed(0)} | ${(1000 / (rate / B)).toFixed(3)} | ${ref ? maxDiff.toExponential(1) : 'reference'} |`,
      );
      if (values.json)
        appendFileSync(
          values.json,
          `${JSON.stringify({ bench: 'device-decode', decoder: d.name, ep, batch: B, tokens, tokPerS: rate, msPerStep: 1000 / (rate / B), maxAbsDiff: ref ? maxDiff : 0 })}\n`,
        );
    } catch (e) {
      print(`| ${d.name} | ${B} | – | – | failed: ${(e as Error).message.split('\n')[0]} |`);
    }
  }
  await d.release();
}
