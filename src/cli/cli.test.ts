/**
 * The real CLI as a child process (bin/mamba2-onnx.js → tsx → cli.ts): exit codes, one-line
 * errors, export → inspect, and verify against fixtures (the repo's own under test/fixtures, and
 * ../shared/fixtures when present).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'mamba2-onnx.js');
const OWN = join(ROOT, 'test', 'fixtures', 'tiny-g1');
const SHARED = process.env['MAMBA2_SHARED_FIXTURES'] ?? resolve(ROOT, '..', 'shared', 'fixtures');
const SHARED_TINY = join(SHARED, 'hf-tiny-untied');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

/** stderr is exactly one `error: …` line, with no stack trace. */
function expectOneLineError(r: Run): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: \S/);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mamba2-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('export and inspect', () => {
  it('exports the tiny preset with random weights, then inspect --json describes it', async () => {
    const out = join(tmp, 'tiny');
    const ex = await cli(['export', '--preset', 'tiny', '--random-weights', '--seed', '7', '--out', out], tmp);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toContain(`exported preset:tiny@7 → ${out}`);
    expect(ex.stdout).toMatch(/model\.onnx\s+\d/);
    expect(ex.stderr).not.toContain('error');

    const ins = await cli(['inspect', out, '--json'], tmp);
    expect(ins.code, ins.stderr).toBe(0);
    const r = JSON.parse(ins.stdout) as {
      model: {
        inputs: { name: string; dims: unknown[] }[];
        outputs: { name: string }[];
        opsetImports: Record<string, number>;
        opCounts: Record<string, number>;
        initializers: { parameters: number };
      };
      meta: { source: string; config: { nLayer: number; vocabSize: number } };
      files: { name: string; bytes: number }[];
    };
    const layers = r.meta.config.nLayer;
    expect(layers).toBe(2);
    expect(r.meta.source).toBe('preset:tiny@7');
    expect(r.model.inputs.map((i) => i.name)).toEqual(['input_ids', 'past_conv.0', 'past_ssm.0', 'past_conv.1', 'past_ssm.1']);
    expect(r.model.outputs).toHaveLength(1 + 2 * layers);
    expect(r.model.inputs[0]!.dims).toEqual(['batch', 'sequence']);
    expect(r.model.opsetImports['']).toBeGreaterThanOrEqual(21);
    // 2 layers × (x·W_in, 2 chunked-SSD step products …): at least one MatMul per layer, one If
    expect(r.model.opCounts['ai.onnx::MatMul']).toBeGreaterThanOrEqual(layers);
    expect(r.model.opCounts['ai.onnx::If']).toBe(1);
    // embedding 256×64 + per layer in_proj 296×64, conv 160×4 + 160, dt_bias/A_log/D 3×8, norms 64 + 128, out_proj 64×128; final norm 64
    expect(r.model.initializers.parameters).toBeGreaterThanOrEqual(256 * 64 + 2 * (296 * 64 + 160 * 5 + 24 + 192 + 64 * 128) + 64);
    expect(r.files.map((f) => f.name).sort()).toEqual(['mamba2-onnx.json', 'model.onnx']);
    expect(r.files.every((f) => f.bytes > 0)).toBe(true);

    const text = await cli(['inspect', join(out, 'model.onnx')], tmp);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^opsets\s+ai\.onnx \d+/m);
    expect(text.stdout).toMatch(/^\s+past_ssm\.0\s+float32\s+\[batch, 8, 16, 16\]/m);
    expect(text.stdout).toMatch(/^parameters\s+[\d,]+ in \d+ initializers/m);
  });

  it('refuses to write into a non-empty directory without --force and leaves it untouched', async () => {
    const out = join(tmp, 'occupied');
    await mkdir(out);
    await writeFile(join(out, 'notes.txt'), 'keep me');
    const r = await cli(['export', '--preset', 'tiny', '--random-weights', '--out', out], tmp);
    expect(r.code).toBe(1);
    expectOneLineError(r);
    expect(r.stderr).toContain('--force');
    const forced = await cli(['export', '--preset', 'tiny', '--random-weights', '--out', out, '--force'], tmp);
    expect(forced.code).toBe(1); // not a previous export: --force does not delete it either
    expectOneLineError(forced);
    expect(await readdir(out)).toEqual(['notes.txt']);
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('keep me');
  });

  it('fails on a missing checkpoint directory without creating the output', async () => {
    const parent = join(tmp, 'missing-ckpt');
    await mkdir(parent);
    const r = await cli(['export', join(tmp, 'no-such-checkpoint'), '--out', join(parent, 'out')], tmp);
    expect(r.code).toBe(1);
    expectOneLineError(r);
    expect(r.stderr).toContain('no-such-checkpoint');
    expect(await readdir(parent)).toEqual([]);
  });
});

describe('usage errors', () => {
  const cases: [string, string[], RegExp][] = [
    ['no source', ['export', '--out', 'x'], /checkpoint directory or --preset/],
    ['checkpoint and preset', ['export', 'ckpt', '--preset', 'tiny', '--random-weights', '--out', 'x'], /got both/],
    ['preset without weights', ['export', '--preset', 'tiny', '--out', 'x'], /no weights.*--random-weights/],
    ['unknown preset', ['export', '--preset', 'nope', '--random-weights', '--out', 'x'], /--preset: expected one of .*tiny.*got 'nope'/],
    ['non-integer chunk size', ['export', 'ckpt', '--out', 'x', '--chunk-size', '1.5'], /--chunk-size.*'1\.5'.*expected an integer/],
    ['bad enum', ['export', 'ckpt', '--out', 'x', '--external-data', 'sometimes'], /--external-data.*auto, always, never/],
    ['negative seed', ['export', '--preset', 'tiny', '--random-weights', '--seed', '-3', '--out', 'x'], /--seed.*expected an integer ≥ 0/],
    ['unknown option', ['export', '--forse'], /unknown option '--forse'.*--force/],
    ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['missing --reference', ['verify', 'dir'], /--reference/],
    ['bad tolerance', ['verify', 'dir', '-r', 'ref.json', '--tolerance', 'tiny'], /--tolerance.*expected a finite number/],
    ['bad ep', ['verify', 'dir', '-r', 'ref.json', '--ep', 'tpu'], /--ep.*cpu, webgpu, cuda/],
  ];
  it.concurrent.for(cases)('%s → exit 2 and one line', async ([, args, message], { expect: exp }) => {
    const r = await cli(args, tmp);
    exp(r.code, r.stderr).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    exp(lines, r.stderr).toHaveLength(1);
    exp(lines[0]).toMatch(/^error: \S/);
    exp(r.stderr).toMatch(message);
  });

  it('a failure is exit 1 with one line; --verbose adds the stack', async () => {
    const plain = await cli(['inspect', join(tmp, 'nothing-here')], tmp);
    expect(plain.code).toBe(1);
    expectOneLineError(plain);
    const verbose = await cli(['--verbose', 'inspect', join(tmp, 'nothing-here')], tmp);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/^error: model: expected a model directory/);
    expect(verbose.stderr).toMatch(/^\s+at /m);
  });
});

/** Exports `fixture/hf` into tmp/name once; returns the model directory. */
async function ensureExport(fixture: string, name: string): Promise<string> {
  const out = join(tmp, name);
  if (!existsSync(out)) {
    const ex = await cli(['export', join(fixture, 'hf'), '--out', out], tmp);
    expect(ex.code, ex.stderr).toBe(0);
  }
  return out;
}

/** Exports `fixture/hf` and runs verify against `reference`; returns the parsed --json report. */
async function exportAndVerify(
  fixture: string,
  name: string,
  reference: string,
): Promise<{
  run: Run;
  report: {
    ok: boolean;
    cases: { ok: boolean; maxAbsDiff: number | string }[];
    split?: { ok: boolean };
    greedy: { ok: boolean; matched: number; newTokens: number }[];
  };
}> {
  const out = await ensureExport(fixture, name);
  const run = await cli(['verify', out, '--reference', reference, '--json'], tmp);
  return { run, report: JSON.parse(run.stdout) as never };
}

describe('verify', () => {
  it('passes on the repo fixture tiny-g1 (hf format): cases, split prefill, greedy', async () => {
    const { run, report } = await exportAndVerify(OWN, 'own-tiny', join(OWN, 'reference.json'));
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.cases.length).toBeGreaterThan(0);
    expect(report.split?.ok).toBe(true);
    expect(report.greedy[0]!.matched).toBe(report.greedy[0]!.newTokens);
    const text = await cli(['verify', join(tmp, 'own-tiny'), '-r', join(OWN, 'reference.json')], tmp);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\s+case 1\s+\[\d+×\d+\]\s+max \|Δ logits\| \S+/m);
    expect(text.stdout.trim().split('\n').at(-1)).toBe('PASS');
  });

  it('fails with a non-zero exit when one reference logit is perturbed', async () => {
    const ref = JSON.parse(await readFile(join(OWN, 'reference.json'), 'utf8')) as { cases: { logits: number[][][] }[] };
    ref.cases[0]!.logits[0]![3]![5]! += 0.01;
    const bad = join(tmp, 'perturbed.json');
    await writeFile(bad, JSON.stringify(ref));
    const { run, report } = await exportAndVerify(OWN, 'own-tiny', bad);
    expect(run.code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.cases[0]!.ok).toBe(false);
    expect(Number(report.cases[0]!.maxAbsDiff)).toBeGreaterThan(0.009);
    expect(report.cases.slice(1).every((c) => c.ok)).toBe(true);
  });

  it('rejects a malformed reference with one line naming the field', async () => {
    const bad = join(tmp, 'malformed.json');
    await writeFile(bad, JSON.stringify({ cases: [{ input_ids: [[1, 2]], logits: [[[0.1]]] }] }));
    const r = await cli(['verify', await ensureExport(OWN, 'own-tiny'), '-r', bad], tmp);
    expect(r.code).toBe(1);
    expectOneLineError(r);
    expect(r.stderr).toContain('cases[0].logits[0]: expected 2 positions');
  });

  it('refuses a reference of another vocabulary size before comparing: one line naming both shapes', async () => {
    // small-g2 has a vocabulary of 128, tiny-g1 (and its reference) one of 64
    const SMALL = join(ROOT, 'test', 'fixtures', 'small-g2');
    const narrow = await cli(['verify', await ensureExport(SMALL, 'small-g2'), '-r', join(OWN, 'reference.json')], tmp);
    expect(narrow.code).toBe(1);
    expectOneLineError(narrow);
    expect(narrow.stdout).toBe(''); // nothing was compared
    expect(narrow.stderr).toContain(
      'reference: cases[0].logits is [1×37×64] but the model gives [1×37×128]: the vocabulary sizes differ (expected 128 logits per position, got 64)',
    );
    const wide = await cli(['verify', await ensureExport(OWN, 'own-tiny'), '-r', join(SMALL, 'reference.json')], tmp);
    expect(wide.code).toBe(1);
    expectOneLineError(wide);
    expect(wide.stdout).toBe('');
    expect(wide.stderr).toMatch(
      /reference: cases\[0\]\.logits is \[\d+×\d+×128\] but the model gives \[\d+×\d+×64\]: the vocabulary sizes differ \(expected 64 logits per position, got 128\)/,
    );
  });

  it('accepts reference logits over the real vocabulary only (the padding columns left out)', async () => {
    // clamp-pad: 90 real tokens padded to 96; its reference declares greedy.real_vocab_size 90
    const PAD = join(ROOT, 'test', 'fixtures', 'clamp-pad');
    const ref = JSON.parse(await readFile(join(PAD, 'reference.json'), 'utf8')) as {
      cases: { logits: number[][][] }[];
      greedy: { real_vocab_size: number };
    };
    expect(ref.greedy.real_vocab_size).toBe(90);
    for (const c of ref.cases) c.logits = c.logits.map((b) => b.map((p) => p.slice(0, 90)));
    const real = join(tmp, 'clamp-pad-real-vocab.json');
    await writeFile(real, JSON.stringify(ref));
    const { run, report } = await exportAndVerify(PAD, 'clamp-pad', real);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(report.ok).toBe(true);
  });

  it.skipIf(!existsSync(SHARED_TINY))('passes on ../shared/fixtures/hf-tiny-untied', async () => {
    const { run, report } = await exportAndVerify(SHARED_TINY, 'shared-tiny', join(SHARED_TINY, 'reference.json'));
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.greedy[0]).toMatchObject({ ok: true, matched: 20, newTokens: 20 });
  });
  if (!existsSync(SHARED_TINY)) console.log(`skipping the shared-fixture verify test: ${SHARED_TINY} not found`);
});

describe('serve: what --help and the README tell a first user', () => {
  it('serve --help says --api-key needs at least 8 characters and that requests sample at temperature 1 unless they send 0', async () => {
    const r = await cli(['serve', '--help'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--api-key <key> require Authorization: Bearer <key>, at least 8 characters/);
    expect(help).toContain(
      'requests without "temperature" are sampled at temperature 1 (OpenAI\'s default), unlike `mamba2-onnx generate`, which is greedy; send "temperature": 0 for greedy output',
    );
  });

  it("README's server section: the curl example is greedy and the sentence beside it says the default temperature is 1", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Serving\n'), readme.indexOf('\n## ', readme.indexOf('\n## Serving\n') + 1));
    const curl = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(curl).toContain('curl localhost:8000/v1/completions');
    expect(curl).toContain('"temperature":0');
    const after =
      section
        .slice(section.indexOf(curl) + curl.length)
        .split('\n\n')[1]
        ?.replace(/\s+/g, ' ') ?? '';
    expect(after).toMatch(/default `temperature` is 1/);
    expect(after).toContain('"temperature": 0');
  });
});
