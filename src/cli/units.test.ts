/** In-process tests of the CLI helpers: flag parsers, reference parsing, the verify arithmetic, error lines. */
import { CommanderError, InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeFor, formatError, oneLine, UsageError } from './errors.js';
import { floatFlag, intFlag, listFlag } from './flags.js';
import { formatBytes, table } from './format.js';
import { main, type Registrar } from './main.js';
import { parseReference } from './reference.js';
import { argmax, maxAbsDiff } from './verify-checks.js';
import type { CliIO } from './errors.js';

describe('flag parsers', () => {
  it('intFlag accepts integers in range and names the expectation otherwise', () => {
    const p = intFlag(1, 4096);
    expect(p('16')).toBe(16);
    for (const bad of ['0', '4097', '1.5', 'abc', '', '1e3', '0x10']) {
      expect(() => p(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(() => p('0')).toThrow('expected an integer in [1, 4096]');
    expect(() => intFlag(0)('-1')).toThrow('expected an integer ≥ 0');
  });

  it('floatFlag and listFlag', () => {
    expect(floatFlag(0)('1e-4')).toBe(1e-4);
    for (const bad of ['-1', 'NaN', 'Infinity', '', 'x']) expect(() => floatFlag(0)(bad), bad).toThrow(InvalidArgumentError);
    expect(listFlag(['cpu', 'webgpu'] as const)('WebGPU, cpu,cpu')).toEqual(['webgpu', 'cpu']);
    expect(() => listFlag(['cpu'] as const)('cpu,')).toThrow('expected one or more of cpu');
  });
});

describe('reference parsing', () => {
  const good = {
    cases: [
      {
        input_ids: [[1, 2]],
        logits: [
          [
            [0, 1, 2],
            [1, 2, 3],
          ],
        ],
      },
    ],
    greedy: { input_ids: [[1]], output_ids: [[1, 4, 5]], eos_token_id: 2 },
  };

  it('reads the fixture format', () => {
    const r = parseReference(good, 'ref.json');
    expect(r.cases[0]!.inputIds).toEqual([[1, 2]]);
    expect(r.greedy).toEqual({ inputIds: [[1]], outputIds: [[1, 4, 5]], eosTokenId: 2 });
  });

  it.each([
    [{ cases: 'x' }, 'cases: expected a list'],
    [{ cases: [{ input_ids: [[1, -2]], logits: [] }] }, 'cases[0].input_ids[0][1]: expected a non-negative integer'],
    [{ cases: [{ input_ids: [[1], [1, 2]], logits: [] }] }, 'cases[0].input_ids[1]: expected a row of length 1'],
    [{ cases: [{ input_ids: [[1, 2]], logits: [[[0], [0, 1]]] }] }, 'cases[0].logits[0][1]: expected 1 logits'],
    [{ cases: [{ input_ids: [[1]], logits: [[['a']]] }] }, 'cases[0].logits[0][0][0]: expected a finite number'],
    [{ greedy: { input_ids: [[1, 2]], output_ids: [[1, 3, 4]] } }, 'greedy.output_ids[0]: expected the prompt'],
    [{}, 'expected at least one case or a greedy entry'],
    [[], '(top level): expected an object'],
  ])('%j → %s', (raw, message) => {
    expect(() => parseReference(raw, 'ref.json')).toThrow(message);
  });
});

describe('verify arithmetic', () => {
  it('maxAbsDiff compares the reference vocab only, reports where, and flags NaN', () => {
    // model [1, 2, 4] (vocab padded to 4), reference vocab 3
    const a = new Float32Array([0, 1, 2, 99, 1, 2, 3.5, 99]);
    expect(
      maxAbsDiff(a, 4, [
        [
          [0, 1, 2],
          [1, 2, 3],
        ],
      ]),
    ).toEqual({ maxAbsDiff: 0.5, at: [0, 1, 2] });
    a[1] = NaN;
    expect(
      maxAbsDiff(a, 4, [
        [
          [0, 1, 2],
          [1, 2, 3],
        ],
      ]).maxAbsDiff,
    ).toBeNaN();
  });

  it('argmax skips EOS and padded vocab rows; the first index wins ties', () => {
    const row = new Float32Array([0, 5, 9, 5, 100]);
    expect(argmax(row, 0, 4)).toBe(2);
    expect(argmax(row, 0, 4, 2)).toBe(1);
    expect(argmax(row, 0, 5)).toBe(4);
  });
});

describe('errors and output', () => {
  it('one line, exit codes, stack only when verbose', () => {
    const e = new Error('first\n  second\n');
    expect(oneLine(e.message)).toBe('first second');
    expect(formatError(e, false)).toBe('error: first second\n');
    expect(formatError(e, true)).toMatch(/^error: first second\nError: first/);
    expect(formatError(new UsageError('bad', 'export'), false)).toBe("error: bad (see 'mamba2-onnx export --help')\n");
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT_USAGE);
    expect(exitCodeFor(new CommanderError(1, 'c', 'x'))).toBe(EXIT_USAGE);
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', ''))).toBe(EXIT_OK);
    expect(exitCodeFor(new RangeError('x'))).toBe(EXIT_FAILURE);
  });

  it('a registered command runs through main() and its errors become one line', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIO = { out: (s) => out.push(s), err: (s) => err.push(s), errIsTTY: false, setExitCode: () => {} };
    const hello: Registrar = (program, cio) => {
      program
        .command('hello')
        .argument('<n>')
        .action((n: string) => {
          if (n === 'boom') throw new TypeError('deep\ninside');
          cio.out(`hi ${n}\n`);
          cio.setExitCode(n === 'fail' ? 1 : 0);
        });
    };
    expect(await main(['hello', 'you'], io, [hello])).toBe(0);
    expect(out).toEqual(['hi you\n']);
    expect(await main(['hello', 'fail'], io, [hello])).toBe(1);
    expect(await main(['hello', 'boom'], io, [hello])).toBe(1);
    expect(await main(['hello'], io, [hello])).toBe(2);
    expect(err).toEqual(['error: deep inside\n', "error: missing required argument 'n' (see 'mamba2-onnx hello --help')\n"]);
  });

  it('formats sizes and tables', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(
      table(
        [
          ['a', '1'],
          ['bbb', '22'],
        ],
        { right: [1] },
      ),
    ).toBe('a     1\nbbb  22');
  });
});
