/**
 * ONNX's own tools on the exports (test/onnx_check.py): every form passes
 * onnx.checker.check_model(full_check=True) and strict shape inference, and ONNX's reference
 * evaluator (a second runtime) gives ONNX Runtime's logits and states on a prefill and one step.
 *
 * Needs a Python with onnx and numpy (the evaluator comparison also onnxruntime): $MAMBA2_ONNX_PYTHON,
 * else /tmp/venv/bin/python, else python3 (README "Tests" installs them). Skipped with the reason
 * when none has them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExportOptions, exportModel } from '../src/export/index.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const SCRIPT = resolve(import.meta.dirname, 'onnx_check.py');

interface Python {
  exe?: string;
  /** Why the checks cannot run (no exe), or why the evaluator comparison cannot (exe without onnxruntime). */
  reason?: string;
  ort: boolean;
}

function findPython(): Python {
  const env = process.env.MAMBA2_ONNX_PYTHON;
  const tried: string[] = [];
  for (const exe of env ? [env] : ['/tmp/venv/bin/python', 'python3']) {
    const r = spawnSync(exe, ['-c', 'import onnx, numpy'], { encoding: 'utf8' });
    if (r.status === 0) {
      const o = spawnSync(exe, ['-c', 'import onnxruntime'], { encoding: 'utf8' });
      return o.status === 0 ? { exe, ort: true } : { exe, ort: false, reason: `${exe} has onnx but no onnxruntime` };
    }
    tried.push(`${exe}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`)}`);
  }
  return { ort: false, reason: `no Python with onnx and numpy (${tried.join('; ')}); set MAMBA2_ONNX_PYTHON or see README "Tests"` };
}

interface Check {
  dir: string;
  checker: string;
  shape_inference: string;
  evaluator: string;
  prefill?: { max_abs: number; worst_output: string; max_ref: number };
  step?: { max_abs: number; worst_output: string; max_ref: number };
}

type Variant = [label: string, checkpoint: string, options: Omit<ExportOptions, 'outDir'>];

const G2 = 'small-g2/hf';
const VARIANTS: Variant[] = [
  ['mamba2 G=2 default', G2, {}],
  ['mamba2 G=1 default', 'tiny-g1/hf', {}],
  ['mamba2 mamba_ssm checkpoint', 'small-g2/mamba_ssm', {}],
  ['mamba2 dt clamp', 'clamp-pad/hf', {}],
  ['--ssd function', G2, { ssd: 'function' }],
  ['--ssd contrib', G2, { ssd: 'contrib' }],
  ['--ssd scan', G2, { ssd: 'scan' }],
  ['--logits last', G2, { logits: 'last' }],
  ['--step ops (standard ops only)', G2, { tuning: { step: 'ops' } }],
  ['--rmsnorm fused (opset 23 RMSNormalization)', G2, { tuning: { rmsnorm: 'fused' } }],
  ['--rmsnorm fused G=1 --ssd function', 'tiny-g1/hf', { tuning: { rmsnorm: 'fused' }, ssd: 'function' }],
  ['--rmsnorm fused --ssd scan --dtype int4', G2, { tuning: { rmsnorm: 'fused' }, ssd: 'scan', dtype: 'int4', blockSize: 16 }],
  ['--dtype fp16', G2, { dtype: 'fp16' }],
  ['--dtype int8', G2, { dtype: 'int8', blockSize: 16 }],
  ['--dtype int4', G2, { dtype: 'int4', blockSize: 16 }],
  ['bamba G=2 default', 'bamba-g2/hf', {}],
  ['bamba G=1 --ssd scan', 'bamba-g1/hf', { ssd: 'scan' }],
  ['bamba --ssd contrib --dtype fp16', 'bamba-g2/hf', { ssd: 'contrib', dtype: 'fp16' }],
  ['mamba_ssm attention default', 'mamba2attn-tiny/mamba_ssm', {}],
  ['mamba_ssm attention --dtype int4 --logits last', 'mamba2attn-tiny/mamba_ssm', { dtype: 'int4', blockSize: 16, logits: 'last' }],
  ['bamba --rmsnorm fused', 'bamba-g2/hf', { tuning: { rmsnorm: 'fused' } }],
  ['mamba_ssm attention --rmsnorm fused --dtype fp16', 'mamba2attn-tiny/mamba_ssm', { tuning: { rmsnorm: 'fused' }, dtype: 'fp16' }],
  ['granite-4.0-h dense default', 'granite-dense/hf', {}],
  ['granite-4.0-h MoE --rmsnorm fused', 'granite-moe/hf', { tuning: { rmsnorm: 'fused' } }],
  ['nemotron-h default', 'nemotron-h/hf', {}],
  ['nemotron-h MoE --ssd contrib --dtype int8', 'nemotron-h-moe/hf', { ssd: 'contrib', dtype: 'int8', blockSize: 16 }],
];

/** max |evaluator − ORT| allowed: fp32 math agrees to rounding; fp16 products round differently in numpy and ORT. */
const tolerance = (o: Omit<ExportOptions, 'outDir'>) => (o.dtype === 'fp16' ? 1e-2 : 2e-5);

const python = findPython();

describe.skipIf(!python.exe)(
  `ONNX checker, strict shape inference, reference evaluator${python.exe ? '' : ` (skipped: ${python.reason})`}`,
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'm2o-onnx-check-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    const results = new Map<string, Check>();

    beforeAll(async () => {
      const dirs: string[] = [];
      for (const [k, [, ckpt, o]] of VARIANTS.entries()) {
        const r = await exportModel({ checkpointDir: join(FIXTURES, ckpt) }, { outDir: join(tmp, String(k)), ...o });
        dirs.push(r.outDir);
      }
      const p = spawnSync(python.exe!, [SCRIPT, ...dirs], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (p.status !== 0) throw new Error(`${python.exe} ${SCRIPT} failed (exit ${p.status}): ${p.stderr.slice(-2000)}`);
      for (const line of p.stdout.trim().split('\n')) {
        const c = JSON.parse(line) as Check;
        results.set(c.dir, c);
      }
    });

    for (const [k, [label, , o]] of VARIANTS.entries()) {
      const get = () => {
        const c = results.get(join(tmp, String(k)));
        if (!c) throw new Error(`${label}: no result from ${SCRIPT}`);
        return c;
      };
      it(`${label}: checker (full_check) and strict shape inference`, () => {
        const c = get();
        expect(c.checker, label).toBe('ok');
        expect(c.shape_inference, label).toBe('ok');
      });
      it(`${label}: reference evaluator = ORT, prefill and one step (≤ ${tolerance(o)})`, (ctx) => {
        if (!python.ort) ctx.skip(python.reason);
        const c = get();
        expect(c.evaluator, label).toBe('ok');
        for (const [phase, r] of [
          ['prefill', c.prefill],
          ['step', c.step],
        ] as const) {
          expect(r, `${label} ${phase}`).toBeDefined();
          expect(r!.max_abs, `${label} ${phase}: max |Δ| ${r!.max_abs} at ${r!.worst_output} (|ref| ≤ ${r!.max_ref})`).toBeLessThanOrEqual(
            tolerance(o),
          );
        }
      });
    }
  },
);
