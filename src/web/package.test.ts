/**
 * Choosing a variant of a model package (pure logic; the browser tests run the whole loader) and
 * normalising model directory URLs.
 */
import { describe, expect, it } from 'vitest';
import type { ModelMeta, WeightDType } from '../package/meta.js';
import { chooseVariant, directoryUrl, dtypePreference, type Variant } from './package.js';

function variant(dtype: WeightDType): Variant {
  const meta = { weightDType: dtype, files: { model: 'model.onnx' } } as unknown as ModelMeta;
  return {
    label: `https://h/${dtype}/`,
    meta,
    has: () => false,
    probe: () => Promise.resolve(undefined),
    read: () => Promise.reject(new Error('not used')),
  };
}

describe('chooseVariant', () => {
  const both = [variant('fp32'), variant('fp16')];

  it('fp16 on a WebGPU adapter with shader-f16, fp32 without it and on wasm', () => {
    expect(chooseVariant(both, 'webgpu', true).variant.meta.weightDType).toBe('fp16');
    expect(chooseVariant(both, 'webgpu', true).why).toBe('fp16 weights (the adapter has shader-f16; the package has fp32, fp16)');
    expect(chooseVariant(both, 'webgpu', false).variant.meta.weightDType).toBe('fp32');
    expect(chooseVariant(both, 'webgpu', false).why).toMatch(/no shader-f16/);
    expect(chooseVariant(both, 'wasm', true).variant.meta.weightDType).toBe('fp32');
  });

  it('a single variant is used whatever it is', () => {
    expect(chooseVariant([variant('fp16')], 'wasm', false)).toMatchObject({ why: 'fp16 weights' });
    expect(chooseVariant([variant('int4')], 'webgpu', true).variant.meta.weightDType).toBe('int4');
  });

  it('an explicit dtype must be in the package', () => {
    expect(chooseVariant(both, 'webgpu', false, 'fp16').variant.meta.weightDType).toBe('fp16');
    expect(() => chooseVariant(both, 'wasm', false, 'int8')).toThrow(
      "dtype: expected one of the package's weight types (fp32, fp16), got 'int8'",
    );
  });

  it('every weight type has a place in every preference order', () => {
    for (const [ep, f16] of [
      ['webgpu', true],
      ['webgpu', false],
      ['wasm', false],
    ] as const) {
      expect([...dtypePreference(ep, f16)].sort()).toEqual(['fp16', 'fp32', 'int4', 'int8']);
    }
  });
});

describe('directoryUrl', () => {
  it('adds the trailing slash, drops mamba2-onnx.json and the hash', () => {
    expect(directoryUrl('https://h/models/tiny')).toBe('https://h/models/tiny/');
    expect(directoryUrl('https://h/models/tiny/mamba2-onnx.json#x')).toBe('https://h/models/tiny/');
    expect(directoryUrl(new URL('https://h/a/?v=1'))).toBe('https://h/a/?v=1');
  });

  it('a relative URL outside a page is a clear error', () => {
    expect(() => directoryUrl('/models/tiny/')).toThrow(
      'model URL: expected an absolute URL or one relative to the page, got "/models/tiny/"',
    );
  });
});
