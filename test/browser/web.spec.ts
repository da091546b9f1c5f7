/**
 * The demo page and the browser entry in real headless Chromium (Debian's, driven by playwright-core):
 *
 * - WebGPU on SwiftShader (`--enable-unsafe-webgpu`), dev server: a two-variant package (fp32 +
 *   fp16; no shader-f16 there, so fp32 runs), greedy tokens equal the Node runtime's (onnxruntime-node,
 *   cpu); a screenshot of the page is kept in test/browser/artifacts/.
 * - After a reload everything comes from the Cache API (no request reaches the server), run on wasm:
 *   the same tokens.
 * - Without the flag, on the built page (vite build + preview): the page says WebGPU is missing and
 *   runs on wasm, here from picked local files (a folder with both variants); asking for webgpu
 *   explicitly is a clear error.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyPackage, nodeGreedy, type TinyPackage } from './fixtures.js';
import { hasChromium, CHROMIUM, openPage, startPreview, startServer, waitState, type PageServer } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, 'artifacts');
const PROMPT = 'Hello';
const N = 12;

if (!hasChromium) {
  describe('browser', () => {
    it.skip(`skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`, () => {});
  });
}

/** Console errors that are expected: the probe for an optional tokenizer_config.json that is absent. */
function unexpected(errors: readonly string[]): string[] {
  return errors.filter((e) => !/status of 404/.test(e));
}

async function loadUrl(page: Page, urls: string, ep: 'auto' | 'webgpu' | 'wasm'): Promise<void> {
  await page.selectOption('#ep', ep);
  await page.fill('#model-url', urls);
  await page.click('#load-url');
  await waitState(page, ['ready']);
}

/** Generate greedily through the page; the ids and the EP badge it shows. */
async function generate(page: Page): Promise<{ ids: number[]; ep: string; stats: string }> {
  await page.fill('#prompt', PROMPT);
  await page.fill('#max-new', String(N));
  await page.fill('#temperature', '0');
  await page.click('#generate');
  await waitState(page, ['done']);
  const ids = JSON.parse((await page.locator('#ids').getAttribute('data-ids')) ?? '[]') as number[];
  return { ids, ep: (await page.locator('#ep-badge').textContent()) ?? '', stats: (await page.locator('#stats').textContent()) ?? '' };
}

describe.runIf(hasChromium)('browser: the page in headless Chromium', () => {
  let root: string;
  let pkg: TinyPackage;
  let ref: { ids: number[]; text: string };
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'm2-browser-'));
    pkg = await makeTinyPackage(join(root, 'models'));
    ref = await nodeGreedy(pkg.fp32, PROMPT, N);
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  describe('with WebGPU (SwiftShader), dev server', () => {
    let browser: Browser;
    let server: PageServer;
    let page: Page;
    let errors: string[];
    beforeAll(async () => {
      ({ browser, server, page, errors } = await openPage(true, () => startServer(pkg.root)));
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it("webgpu: picks the fp32 variant (no shader-f16) and its greedy tokens equal the Node runtime's", async () => {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      // every status line the page shows while loading (download progress included)
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { statusLines: string[] }).statusLines = seen;
        const el = document.getElementById('status')!;
        new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
      });
      await loadUrl(page, '/models/tiny/ /models/tiny-fp16/', 'auto');
      const lines = await page.evaluate(() => (window as unknown as { statusLines: string[] }).statusLines);
      expect(
        lines.some((l) => /^loading http:.*\/models\/tiny\/: [\d.]+ MiB of [\d.]+ MiB$/.test(l)),
        lines.join('\n'),
      ).toBe(true);
      expect(await page.locator('#gpu-banner').isHidden()).toBe(true);
      expect(await page.locator('#info-dtype').textContent()).toBe(
        'fp32 weights (the adapter has no shader-f16; the package has fp32, fp16)',
      );
      expect(await page.locator('#ep-note').textContent()).toBe('recurrent state kept on the GPU between tokens');
      const r = await generate(page);
      console.log(`[browser] EP webgpu: ${r.stats}; ids ${r.ids.join(',')}`);
      expect(r.ep).toBe('webgpu');
      expect(r.ids).toEqual(ref.ids);
      expect(await page.locator('#out-text').textContent()).toBe(ref.text);
      await page.locator('details').evaluate((d) => ((d as HTMLDetailsElement).open = true));
      await page.screenshot({ path: join(ARTIFACTS, 'page.png'), fullPage: true });
      expect(unexpected(errors)).toEqual([]);
    });

    it('wasm after a reload: every file comes from the Cache API, and the tokens are the same', async () => {
      const before = server.modelRequests.length;
      expect(before).toBeGreaterThanOrEqual(4); // 2 × mamba2-onnx.json, model.onnx, model.onnx.data, tokenizer.json
      await page.reload();
      await waitState(page, ['idle']);
      await loadUrl(page, '/models/tiny/ /models/tiny-fp16/', 'wasm');
      expect(await page.locator('#info-files').textContent()).toMatch(/\(from the cache\)/);
      expect(server.modelRequests.slice(before)).toEqual([]);
      const r = await generate(page);
      console.log(`[browser] EP wasm: ${r.stats}; ids ${r.ids.join(',')}`);
      expect(r.ep).toBe('wasm');
      expect(r.ids).toEqual(ref.ids);
      expect(unexpected(errors)).toEqual([]);
    });
  });

  describe('without WebGPU, built page (vite build + preview)', () => {
    let browser: Browser;
    let server: PageServer;
    let page: Page;
    let errors: string[];
    beforeAll(async () => {
      ({ browser, server, page, errors } = await openPage(false, () => startPreview(pkg.root, join(root, 'dist'))));
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it('says WebGPU is missing and runs on wasm, from picked local files', async () => {
      await expect.poll(() => page.locator('#gpu-banner').textContent()).toMatch(/WebGPU is not available.*wasm/);
      await page.setInputFiles('#pick-dir', pkg.root); // a folder holding both variants
      await waitState(page, ['ready']);
      expect(await page.locator('#info-dtype').textContent()).toMatch(/^fp32 weights/);
      const r = await generate(page);
      console.log(`[browser] EP wasm (no WebGPU, local files): ${r.stats}`);
      expect(r.ep).toBe('wasm');
      expect(r.ids).toEqual(ref.ids);
      await page.screenshot({ path: join(ARTIFACTS, 'page-no-webgpu.png'), fullPage: true });
      expect(unexpected(errors)).toEqual([]);
    });

    it('asking for webgpu where there is none is a clear error', async () => {
      await page.selectOption('#ep', 'webgpu');
      await page.fill('#model-url', '/models/tiny/');
      await page.click('#load-url');
      await waitState(page, ['error']);
      const status = (await page.locator('#status').textContent()) ?? '';
      console.log(`[browser] EP webgpu asked for without WebGPU: ${status}`);
      expect(status).toMatch(
        /^Could not load the model: execution provider 'webgpu' is unavailable in this browser: no WebGPU adapter.*load with ep 'auto' to fall back to wasm/,
      );
    });
  });
});
