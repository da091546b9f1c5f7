/**
 * A process that exports a preset with seeded random weights and external data, for the
 * kill-during-export test (test/kill-export.test.ts), which SIGKILLs it at random points.
 *
 *   node --import tsx test/helpers/export-driver.ts <preset.json> <outDir> <seed> [--overwrite]
 *
 * stdout, one line per event (the test kills on them): `start`, `progress <phase> <done>/<total>`, `done`.
 */
import { exportModel } from '../../src/export/index.js';

async function main(argv: readonly string[]): Promise<void> {
  const [preset, outDir, seedText, ...flags] = argv;
  const seed = Number(seedText);
  if (!preset || !outDir || !Number.isSafeInteger(seed)) {
    throw new TypeError(`usage: export-driver <preset.json> <outDir> <seed> [--overwrite], got ${JSON.stringify(argv)}`);
  }
  process.stdout.write('start\n');
  await exportModel(
    { preset, randomWeights: true, seed },
    {
      outDir,
      overwrite: flags.includes('--overwrite'),
      externalData: 'always',
      onProgress: (p) => process.stdout.write(`progress ${p.phase} ${p.done}/${p.total}\n`),
    },
  );
  process.stdout.write('done\n');
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`export-driver: ${(e as Error).message}\n`);
  process.exit(1);
});
