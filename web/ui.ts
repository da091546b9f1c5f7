/** Small DOM helpers of the demo page. */
import type { GenerateOptions } from '../src/web/index.js';

/** The element with this id (or, with `selector`, the first match of a CSS selector); throws when absent. */
export function $<T extends HTMLElement = HTMLElement>(id: string, selector = false): T {
  const el = selector ? document.querySelector(id) : document.getElementById(id);
  if (!el) throw new Error(`page: element ${selector ? id : `#${id}`} is missing`);
  return el as T;
}

export type PageState = 'idle' | 'loading' | 'ready' | 'generating' | 'done' | 'error';

export function setState(s: PageState): void {
  document.body.dataset.state = s;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** A number input's value; undefined when empty. */
function num(id: string, label: string): number | undefined {
  const raw = $<HTMLInputElement>(id).value.trim();
  if (raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new RangeError(`${label}: expected a number, got "${raw}"`);
  return v;
}

/** The sampling controls as GenerateOptions (the runtime validates the values). */
export function readSampling(): GenerateOptions {
  const o: GenerateOptions = {};
  const set = <K extends keyof GenerateOptions>(key: K, v: GenerateOptions[K] | undefined): void => {
    if (v !== undefined) o[key] = v;
  };
  set('maxNewTokens', num('max-new', 'Max new tokens'));
  set('temperature', num('temperature', 'Temperature'));
  set('topK', num('top-k', 'Top-k'));
  set('topP', num('top-p', 'Top-p'));
  set('repetitionPenalty', num('rep', 'Repetition penalty'));
  set('seed', num('seed', 'Seed'));
  return o;
}
