#!/usr/bin/env bash
# Issue 16 "valid ONNX", on the GPU machine: the RMSNorm forms on CUDA and WebGPU, 130m preset.
#   old    the previous default (ORT's SimplifiedLayerNormalization in the default domain, ai.onnx 21;
#          fails onnx.checker), exported by dist/old-default/cli.mjs
#   ops    the new default: standard ops (ai.onnx 21), which ORT's CPU/CUDA optimizers fuse
#   fused  --rmsnorm fused: RMSNormalization (ai.onnx 23); ORT 1.30's WebGPU EP has no If kernel for
#          opset 23, so the If between the step and sequence paths runs on the CPU there
#   fused-step  --rmsnorm fused --paths step (no If): what the fused norm costs without that
# What to check: (1) placement: for ops and fused on CUDA no node on the CPU EP and no Memcpy that
# old does not have (If included); on WebGPU, fused shows If×1 on the CPU; (2) decode and prefill
# tokens/s of old vs ops vs fused on both EPs (is the If on the CPU slower than the unfused norms?);
# (3) captured-graph decode (C API) with fused-step on CUDA and WebGPU.
#   prepare (here, once):  bash bench/gpu-rmsnorm.sh --prepare   (npm run bundle, plus dist/bench/ep-placement.mjs
#                          and dist/old-default/cli.mjs built from commit cf07424, the last with the old norm)
#   run (GPU machine, `source .gpu-kit/enter.sh cuda`, dist carried; .gpu-koffi for part 3):
#                          bash bench/gpu-rmsnorm.sh OUTDIR
set -uo pipefail
if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  npm run bundle >/dev/null
  b='--bundle --platform=node --format=esm --target=node20 --external:onnxruntime-node --external:koffi'
  banner="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  npx esbuild bench/ep-placement.ts $b --banner:js="$banner" --outfile=dist/bench/ep-placement.mjs
  old=$(mktemp -d)
  git archive cf07424 | tar -x -C "$old"
  ln -s "$PWD/node_modules" "$old/node_modules"
  npx esbuild "$old/cli.ts" $b --banner:js="$banner" --outfile=dist/old-default/cli.mjs
  rm -rf "$old"
  echo "prepared: dist/cli.mjs, dist/bench/ep-placement.mjs, dist/old-default/cli.mjs"
  exit 0
fi
out=${1:?usage: gpu-rmsnorm.sh OUTDIR | --prepare}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
exp() {
  local cli=$1 dir=$2; shift 2
  node "$cli" export --preset mamba2-130m --random-weights --seed 1 --force --out "$dir" "$@" >/dev/null 2>>"$out/export.err" \
    || echo "export failed: $dir $*"
}
exp dist/old-default/cli.mjs /tmp/n-old
exp dist/cli.mjs /tmp/n-ops
exp dist/cli.mjs /tmp/n-fused --rmsnorm fused
exp dist/cli.mjs /tmp/n-fused-step --rmsnorm fused --paths step --logits last
models="/tmp/n-old /tmp/n-ops /tmp/n-fused"
for ep in cuda webgpu; do
  echo "== placement $ep"
  timeout 150 node dist/bench/ep-placement.mjs $models --ep $ep --L 1,512 > "$out/placement-$ep.md" 2>> "$out/placement.err"
  echo "rc=$?"; cut -c1-400 "$out/placement-$ep.md"
  for m in $models; do
    timeout 60 node dist/bench/profile.mjs "$m" --ep $ep --L 1 --runs 10 --top 8 >> "$out/profile-$ep.txt" 2>> "$out/profile.err"
  done
done
echo "== bench"
timeout 300 node dist/cli.mjs bench $models --ep cuda,webgpu --lengths 512,2048 --decode 64 --runs 3 --json \
  > "$out/bench.json" 2> "$out/bench.err"
echo "bench rc=$?"
if [[ -d .gpu-koffi ]]; then
  mkdir -p node_modules/@koromix
  cp -r .gpu-koffi/node_modules/koffi node_modules/ && cp -r .gpu-koffi/node_modules/@koromix/koffi-linux-x64 node_modules/@koromix/
  for ep in cuda webgpu; do
    echo "== device decode (captured graphs), fused-step, $ep"
    timeout 120 node dist/bench/device-decode.mjs /tmp/n-fused-step --ep $ep --batch 1 --tokens 128 --runs 3 \
      > "$out/device-decode-$ep.md" 2> "$out/device-decode-$ep.err"
    echo "rc=$?"; cat "$out/device-decode-$ep.md"
  done
fi
tail -3 "$out"/*.err
