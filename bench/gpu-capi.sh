#!/usr/bin/env bash
# Issue 15 on the GPU machine, one call: decode with the state on the device (C-API backend,
# DeviceDecodeRunner eager and with captured graphs) against onnxruntime-node on CUDA and WebGPU,
# batch 1 and 16 (bench/device-decode.ts); prefill through the C-API backend vs onnxruntime-node.
#   usage (GPU machine, after the CUDA provider parts are in /tmp, see ../shared/tools/gpu-kit.sh;
#   needs `npm run bundle`, .gpu-kit and .gpu-koffi (koffi + its prebuilt) carried):
#     source .gpu-kit/enter.sh cuda && bash bench/gpu-capi.sh OUTDIR
set -uo pipefail
out=${1:?usage: gpu-capi.sh OUTDIR}
mkdir -p "$out" node_modules/@koromix
cp -r .gpu-koffi/node_modules/koffi node_modules/ && cp -r .gpu-koffi/node_modules/@koromix/koffi-linux-x64 node_modules/@koromix/
cli="node dist/cli.mjs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
exp() { $cli export --preset mamba2-130m --random-weights --seed 1 --logits last --force "$@" >/dev/null 2>>"$out/export.err" || echo "export failed: $*"; }
exp --paths step --out /tmp/d-step
exp --out /tmp/d-full
echo "== device decode, cuda"
timeout 240 node dist/bench/device-decode.mjs /tmp/d-step --ep cuda --batch 1,16 --tokens 256 --runs 3 --json "$out/device-decode.jsonl" \
  > "$out/device-decode-cuda.md" 2> "$out/device-decode-cuda.err"; echo "rc=$?"
cat "$out/device-decode-cuda.md"
echo "== device decode, webgpu"
timeout 150 node dist/bench/device-decode.mjs /tmp/d-step --ep webgpu --batch 1,16 --tokens 128 --runs 3 --json "$out/device-decode.jsonl" \
  > "$out/device-decode-webgpu.md" 2> "$out/device-decode-webgpu.err"; echo "rc=$?"
cat "$out/device-decode-webgpu.md"
echo "== prefill, cuda: C API vs onnxruntime-node"
for b in capi node; do
  timeout 120 $cli bench /tmp/d-full --ep cuda --backend $b --lengths 512,2048,8192 --decode 16 --runs 3 > "$out/bench-$b.md" 2> "$out/bench-$b.err"; echo "rc=$?"
  cat "$out/bench-$b.md"
done
tail -3 "$out"/*.err
