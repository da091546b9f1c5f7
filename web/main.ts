/**
 * The demo page: pick a model (URL or local files), type a prompt, watch tokens stream.
 * `document.body.dataset.state` says where the page is (idle, loading, ready, generating, done,
 * error) and `#ids[data-ids]` holds the last run's token ids, for scripts and tests.
 */
import {
  clearModelCache,
  detectWebGpu,
  loadModel,
  type EpChoice,
  type GenerateOptions,
  type GenerateResult,
  type LoadProgress,
  type ModelSource,
  type WebModel,
  type WeightDType,
} from '../src/web/index.js';
import { $, errorText, formatBytes, readSampling, setState } from './ui.js';

/** onnxruntime-web's .wasm/.mjs are served under ort/ beside the page (see vite.config.ts). */
const wasmPaths = new URL('ort/', document.baseURI).href;

const FINISH: Record<GenerateResult['finishReason'], string> = {
  length: 'stopped at max new tokens',
  stop_token: 'stopped at an end-of-sequence token',
  stop_string: 'stopped at a stop string',
};

let current: WebModel | undefined;
let abort: AbortController | undefined;

const status = (text: string, error = false): void => {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
};

function showBanner(text: string | undefined): void {
  const b = $('gpu-banner');
  b.hidden = text === undefined;
  b.textContent = text ?? '';
}

function onProgress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = p.stage === 'ready';
  if (p.total > 0) bar.value = p.loaded / p.total;
  else bar.removeAttribute('value'); // indeterminate
  status(p.message);
}

async function load(source: ModelSource): Promise<void> {
  abort?.abort();
  setState('loading');
  $<HTMLButtonElement>('generate').disabled = true;
  $('model-info').hidden = true;
  if (current) {
    await current.release();
    current = undefined;
  }
  try {
    current = await loadModel(source, {
      ep: $<HTMLSelectElement>('ep').value as EpChoice,
      dtype: $<HTMLSelectElement>('dtype').value as WeightDType | 'auto',
      wasmPaths,
      onProgress,
      onWarning: (m) => status(m),
    });
  } catch (e) {
    $<HTMLProgressElement>('progress').hidden = true;
    status(`Could not load the model: ${errorText(e)}`, true);
    setState('error');
    return;
  }
  const m = current;
  const webgpuSkipped = m.fallbacks.find((f) => f.ep === 'webgpu');
  showBanner(
    webgpuSkipped ? `WebGPU is not available — running on wasm (CPU), which is slower. Reason: ${webgpuSkipped.reason}` : undefined,
  );
  const badge = $('ep-badge');
  badge.textContent = m.ep;
  badge.className = `badge ${m.ep}`;
  $('ep-note').textContent = m.model.deviceState ? 'recurrent state kept on the GPU between tokens' : '';
  $('info-dtype').textContent = m.why;
  const c = m.model.config;
  $('info-model').textContent =
    `${m.variant} — ${c.nLayer} layers, d_model ${c.dModel}, vocab ${c.realVocabSize}${m.model.tokenizer ? '' : ' (no tokenizer: prompts must be token ids, e.g. 1,2,3)'}`;
  const cached = m.files.every((f) => f.fromCache);
  const total = m.files.reduce((a, f) => a + f.bytes, 0);
  $('info-files').textContent = `${m.files.map((f) => f.name).join(', ')} — ${formatBytes(total)}${cached ? ' (from the cache)' : ''}`;
  $('model-info').hidden = false;
  status(`Ready on ${m.ep}.`);
  $<HTMLButtonElement>('generate').disabled = false;
  setState('ready');
}

/** A text prompt, or token ids when the model has no tokenizer and the box holds `1,2,3`. */
function promptValue(m: WebModel): string | number[] {
  const text = $<HTMLTextAreaElement>('prompt').value;
  if (!m.model.tokenizer && /^\s*\d+(\s*,\s*\d+)*\s*$/.test(text)) return text.split(',').map((s) => Number(s.trim()));
  return text;
}

async function generate(): Promise<void> {
  const m = current;
  if (!m) return;
  let opts: GenerateOptions;
  try {
    opts = readSampling();
  } catch (e) {
    status(errorText(e), true);
    return;
  }
  abort = new AbortController();
  opts.signal = abort.signal;
  const prompt = promptValue(m);
  $('out-prompt').textContent = typeof prompt === 'string' ? prompt : `[${prompt.join(', ')}]`;
  $('out-text').textContent = '';
  $('ids').textContent = '';
  $('ids').dataset.ids = '';
  $('stats').textContent = '';
  $<HTMLButtonElement>('generate').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  setState('generating');
  status(`Generating on ${m.ep}…`);
  const ids: number[] = [];
  let first = 0;
  let result: GenerateResult | undefined;
  try {
    const it = m.model.stream(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) {
        result = r.value;
        break;
      }
      if (ids.length === 0) first = performance.now();
      ids.push(r.value.tokenId);
      $('out-text').textContent += r.value.text;
      $('ids').textContent = ids.join(', ');
      const s = (performance.now() - first) / 1000;
      $('stats').textContent = `${ids.length} tokens${s > 0 ? ` · ${((ids.length - 1) / s).toFixed(1)} tokens/s` : ''}`;
    }
  } catch (e) {
    const stopped = abort.signal.aborted;
    status(stopped ? `Stopped after ${ids.length} tokens.` : `Generation failed: ${errorText(e)}`, !stopped);
    $('ids').dataset.ids = JSON.stringify(ids);
    setState(stopped ? 'done' : 'error');
    return;
  } finally {
    $<HTMLButtonElement>('generate').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
  if (!result) return;
  $('out-text').textContent = result.text || $('out-text').textContent;
  $('ids').textContent = result.outputIds.join(', ');
  $('ids').dataset.ids = JSON.stringify(result.outputIds);
  $('stats').textContent =
    `${result.outputIds.length} tokens · ${result.decodeTokensPerSecond.toFixed(1)} tokens/s on ${m.ep} · ` +
    `prefill ${result.prefillTokens} tokens in ${result.prefillMs.toFixed(0)} ms · ${FINISH[result.finishReason]}`;
  status(`Done on ${m.ep}.`);
  setState('done');
}

function wire(): void {
  const params = new URLSearchParams(location.search);
  const url = $<HTMLInputElement>('model-url');
  url.value = params.get('model') ?? '';
  const ep = params.get('ep');
  if (ep === 'webgpu' || ep === 'wasm' || ep === 'auto') $<HTMLSelectElement>('ep').value = ep;

  $('url-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const urls = url.value.split(/[\s,]+/).filter((s) => s !== '');
    if (urls.length === 0) return status('Enter the URL of an exported model directory (it holds mamba2-onnx.json).', true);
    void load(urls);
  });
  for (const id of ['pick-dir', 'pick-files']) {
    const input = $<HTMLInputElement>(id);
    input.addEventListener('change', () => {
      if (input.files && input.files.length > 0) void load(Array.from(input.files));
      input.value = '';
    });
  }
  $('generate').addEventListener('click', () => void generate());
  $('stop').addEventListener('click', () => abort?.abort(new Error('stopped by the user')));
  $('prompt').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && current) void generate();
  });
  $('clear-cache').addEventListener('click', () => {
    void clearModelCache().then((n) => status(`Removed ${n} cached file(s).`));
  });
}

wire();
setState('idle');
void detectWebGpu().then((gpu) => {
  if (!gpu.available) {
    showBanner(`WebGPU is not available — models will run on wasm (CPU), which is slower. Reason: ${gpu.reason}`);
    $<HTMLOptionElement>('#ep option[value="webgpu"]', true).textContent = 'webgpu (unavailable)';
  } else if (!current) {
    status(`WebGPU adapter found${gpu.adapter ? ` (${gpu.adapter})` : ''}, shader-f16: ${gpu.shaderF16 ? 'yes' : 'no'}. No model loaded.`);
  }
});
