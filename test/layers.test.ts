/**
 * The layering rules of test/layers.json, checked on every import of the product code (tests and
 * test/ itself excluded): a folder imports only the folders its row allows, and the folders that
 * run in browsers import no Node built-in. The data's way is checkpoint → graph → package →
 * runtime → server/web; the package contract (src/package) and the ONNX wire format (src/onnx)
 * are leaves every side reads.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const RULES = JSON.parse(readFileSync(join(ROOT, 'test/layers.json'), 'utf8')) as { allow: Record<string, string[]>; neutral: string[] };
const SCANNED = ['src', 'bench', 'scripts', 'contrib-ops', 'web', 'cli.ts'];

/** The layer a repository path belongs to: `src/<folder>`, or its top folder (`src` for src/index.ts). */
function layerOf(path: string): string {
  const parts = normalize(path).split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : 'src';
  return parts[0]!;
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s(?:[^'";]*?\sfrom\s)?\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Import specifiers of a source text (static, re-exports, side-effect and dynamic imports). */
function specifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map((m) => (m[1] ?? m[2])!);
}

/** Every import of `files` (path → text) that breaks the rules, as `file: import → layer (why)`. */
function violations(files: ReadonlyMap<string, string>, rules = RULES): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    const from = layerOf(file);
    const allowed = rules.allow[from];
    for (const spec of specifiers(text)) {
      if (spec.startsWith('.')) {
        const to = layerOf(relative(ROOT, resolve(ROOT, dirname(file), spec)));
        if (to === from) continue;
        if (!allowed) out.push(`${file}: ${spec} → ${to} (layer ${from} has no row in test/layers.json)`);
        else if (!allowed.includes(to)) out.push(`${file}: ${spec} → ${to} (${from} may import ${allowed.join(', ') || 'no other layer'})`);
      } else if (rules.neutral.includes(from) && (spec.startsWith('node:') || spec === 'onnxruntime-node')) {
        out.push(`${file}: ${spec} (${from} runs in browsers: no Node built-ins)`);
      }
    }
  }
  return out;
}

function productFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (p: string): void => {
    const abs = join(ROOT, p);
    if (statSync(abs).isDirectory()) {
      for (const e of readdirSync(abs)) if (e !== 'node_modules') walk(join(p, e));
    } else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.spec.ts')) {
      files.set(p, readFileSync(abs, 'utf8'));
    }
  };
  for (const p of SCANNED) walk(p);
  return files;
}

describe('layering (test/layers.json)', () => {
  const files = productFiles();

  it('no product import crosses the table', () => {
    expect(files.size).toBeGreaterThan(100);
    expect(violations(files)).toEqual([]);
  });

  it('every scanned layer has a row', () => {
    const layers = new Set([...files.keys()].map(layerOf));
    expect([...layers].filter((l) => !(l in RULES.allow))).toEqual([]);
  });

  it('catches a forbidden import (runtime → export), a new folder and a Node built-in in a browser layer', () => {
    const bad = new Map([
      ['src/runtime/x.ts', "import { ioTable } from '../export/index.js';\nimport type { A } from './ok.js';"],
      ['src/web/y.ts', "import { readFile } from 'node:fs/promises';\nexport { z } from '../package/io.js';"],
      ['src/newthing/z.ts', "const m = await import('../runtime/index.js');"],
      ['src/package/w.ts', "export * from '../graph/shape.js';"],
    ]);
    expect(violations(bad)).toEqual([
      'src/runtime/x.ts: ../export/index.js → src/export (src/runtime may import src/onnx, src/package)',
      'src/web/y.ts: node:fs/promises (src/web runs in browsers: no Node built-ins)',
      'src/newthing/z.ts: ../runtime/index.js → src/runtime (layer src/newthing has no row in test/layers.json)',
      'src/package/w.ts: ../graph/shape.js → src/graph (src/package may import src/onnx)',
    ]);
  });

  it('reads every import form', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from '../b.js';",
      "import './side-effect.js';",
      "export { c } from './c.js';",
      "export * as d from './d.js';",
      'const e = await import("./e.js");',
      "import {\n  f,\n  g,\n} from './fg.js';",
    ].join('\n');
    expect(specifiers(text)).toEqual(['./a.js', '../b.js', './side-effect.js', './c.js', './d.js', './e.js', './fg.js']);
  });
});
