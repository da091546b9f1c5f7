/**
 * Debian's Chromium driven by playwright-core (never a Playwright browser download), and the demo
 * page served by Vite with the project's own config.
 */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, createServer, preview, type ViteDevServer } from 'vite';
import { webConfig } from '../../vite.config.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/** Flags from shared/notes/environment.md; WebGPU (SwiftShader) only with `webgpu`. */
export function chromiumArgs(webgpu: boolean): string[] {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  return webgpu ? [...args, '--enable-unsafe-webgpu'] : args;
}

export function launch(webgpu: boolean): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs(webgpu), headless: true });
}

export interface PageServer {
  url: string;
  /** /models/ paths served so far. */
  modelRequests: string[];
  close(): Promise<void>;
}

/** The page on Vite's dev server at an ephemeral port, serving `modelsDir` under /models/. */
export async function startServer(modelsDir: string): Promise<PageServer> {
  const modelRequests: string[] = [];
  const config = webConfig({ modelsDir, onModelRequest: (p) => modelRequests.push(p) });
  const server: ViteDevServer = await createServer({
    ...config,
    configFile: false,
    logLevel: 'warn',
    server: { ...config.server, host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const addr = server.httpServer!.address() as AddressInfo;
  return { url: `http://127.0.0.1:${addr.port}/`, modelRequests, close: () => server.close() };
}

/** `vite build` of the page into `outDir`, then `vite preview` of it (the deployable page). */
export async function startPreview(modelsDir: string, outDir: string): Promise<PageServer> {
  const modelRequests: string[] = [];
  const config = webConfig({ modelsDir, onModelRequest: (p) => modelRequests.push(p) });
  await build({ ...config, configFile: false, logLevel: 'warn', build: { ...config.build, outDir } });
  const server = await preview({
    ...config,
    configFile: false,
    logLevel: 'warn',
    build: { ...config.build, outDir },
    preview: { ...config.preview, host: '127.0.0.1', port: 0, strictPort: false, open: false },
  });
  const addr = server.httpServer.address() as AddressInfo;
  return { url: `http://127.0.0.1:${addr.port}/`, modelRequests, close: () => server.close() };
}

export interface OpenPage {
  browser: Browser;
  server: PageServer;
  page: Page;
  /** Console and page errors seen so far (collectErrors). */
  errors: string[];
}

/** Chromium (with or without WebGPU) and a page server started together, the page opened at it. */
export async function openPage(webgpu: boolean, serve: () => Promise<PageServer>): Promise<OpenPage> {
  const [browser, server] = await Promise.all([launch(webgpu), serve()]);
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = collectErrors(page);
  await page.goto(server.url);
  return { browser, server, page, errors };
}

/** Console errors and page errors, kept for failure messages. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** Wait until body[data-state] is one of `states`; on 'error' throw with the page's status line. */
export async function waitState(page: Page, states: readonly string[], timeout = 60_000): Promise<string> {
  const handle = await page.waitForFunction(
    (s) => {
      const st = document.body.dataset.state ?? '';
      return s.includes(st) || st === 'error' ? st : false;
    },
    states,
    { timeout, polling: 100 },
  );
  const st = (await handle.jsonValue()) as string;
  if (st === 'error' && !states.includes('error')) throw new Error(`page error: ${await page.locator('#status').textContent()}`);
  return st;
}
