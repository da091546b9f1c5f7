import { Mamba2Model } from './index.js';
const m = await Mamba2Model.load('/tmp/toy1', { ep: 'webgpu' });
const b1 = await m.forward([[1, 2]]);
console.log('loc', b1.state.tensors.map(t => t.location));
console.error('before getData');
const d = await b1.state.tensors[0]!.getData(false);
console.error('after getData', d);
