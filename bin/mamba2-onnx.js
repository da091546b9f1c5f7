#!/usr/bin/env node
// Runs cli.ts through tsx, so `npx mamba2-onnx` works from a clone without a build step.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../cli.ts', import.meta.url).href);
