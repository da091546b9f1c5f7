import * as ort from 'onnxruntime-node';
import { Mamba2Model } from './index.js';
import { copyModelBytes } from './copy-model.js';
const m = await Mamba2Model.load('/tmp/toy1', { ep: 'webgpu' });
const cpu = await Mamba2Model.load('/tmp/toy1', { ep: 'cpu' });
const b1 = await m.forward([[1, 2]]);
const c1 = await cpu.forward([[1, 2]]);
const copier = await ort.InferenceSession.create(copyModelBytes('float32'), { executionProviders: ['webgpu'] });
for (let i = 0; i < 2; i++) {
  const out = await copier.run({ x: b1.state.tensors[i] as ort.Tensor });
  console.log(out.y!.location, out.y!.dims, out.y!.data, c1.state.tensors[i]!.data);
}
