/**
 * startServer: listen, load the model (503 until it is ready), serve, and shut down gracefully.
 *
 *   const s = await startServer(() => Mamba2Model.load(dir, { deviceState: false }), { port: 8000 });
 *   await s.ready;                       // the model is loaded
 *   process.once('SIGTERM', () => void s.shutdown());
 *
 * shutdown(): stop accepting (new requests 503), let in-flight requests finish for up to
 * `shutdownGraceMs`, cancel what is left (streams get an error event and [DONE]), close every
 * connection, stop the engine, release the model when the server loaded it.
 */
import type { AddressInfo } from 'node:net';
import type { Mamba2Model } from '../runtime/model.js';
import { createApp, type AppContext } from './app.js';
import { Engine } from './engine.js';
import type { EngineStats } from './metrics.js';
import { resolveServeOptions, type ServeOptions } from './options.js';

export interface RunningServer {
  /** `http://host:port` (the port really bound). */
  readonly url: string;
  readonly options: ServeOptions;
  /** Resolves once the model is loaded and requests are served; rejects when loading failed. */
  readonly ready: Promise<void>;
  /** The engine's counters (undefined until the model is loaded). */
  stats(): EngineStats | undefined;
  /** Graceful stop (idempotent): see the module comment. */
  shutdown(graceMs?: number): Promise<void>;
}

export type ModelSource = Mamba2Model | (() => Promise<Mamba2Model>);

export async function startServer(source: ModelSource, options: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const opts = resolveServeOptions(options);
  const ctx: AppContext = { opts, engine: undefined, loadError: undefined, draining: false, created: Math.floor(Date.now() / 1000) };
  const app = createApp(ctx);
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  const owned = typeof source === 'function';
  let model: Mamba2Model | undefined;

  const ready = (async () => {
    try {
      model = typeof source === 'function' ? await source() : source;
      if (ctx.draining) return;
      ctx.engine = new Engine(model, {
        maxBatch: opts.maxBatch,
        maxQueue: opts.maxQueue,
        prefillWindow: opts.prefillWindow,
        stepPrefillMax: opts.stepPrefillMax,
        cacheBytes: opts.cacheBytes,
        log: opts.log,
      });
      opts.log('info', `model '${opts.modelName}' ready on ${model.ep} (${url})`);
    } catch (e) {
      ctx.loadError = e instanceof Error ? e : new Error(String(e));
      opts.log('error', `the model failed to load: ${ctx.loadError.message}`);
      throw ctx.loadError;
    }
  })();
  ready.catch(() => undefined); // observed through `ready` by the caller

  let closing: Promise<void> | undefined;
  const shutdown = (graceMs = opts.shutdownGraceMs): Promise<void> => {
    closing ??= (async () => {
      ctx.draining = true;
      const engine = ctx.engine;
      engine?.close('the server is shutting down');
      const closed = app.close(); // stops accepting; idle keep-alive connections are closed
      if (engine && !(await engine.drain(graceMs))) {
        opts.log('warn', `shutdown: in-flight requests did not finish within ${graceMs} ms; cancelling them`);
        engine.cancelAll('the server is shutting down');
        await engine.drain(5_000);
      }
      // Responses are complete: close connections that a client keeps alive.
      setImmediate(() => app.server.closeAllConnections());
      await closed;
      await engine?.stop();
      await ready.catch(() => undefined);
      if (owned && model) await model.release();
    })();
    return closing;
  };

  return { url, options: opts, ready, stats: () => ctx.engine?.stats(), shutdown };
}
