#!/usr/bin/env bash
# The GPU benchmark run (H200 machine): 130m preset, random weights, every SSD form, dtype and a few
# chunk sizes, on the CUDA and WebGPU EPs, side by side. Needs dist/cli.mjs (npm run bundle) and the
# gpu-kit (../shared/tools/gpu-kit.sh --cuda; see its header for the CUDA provider transfer).
#   usage (on the GPU machine): bash bench/gpu-bench.sh OUTDIR [forms] [dtypes] [scan]   (default: all)
set -uo pipefail
out=${1:?usage: gpu-bench.sh OUTDIR [forms|dtypes|scan]...}
shift; parts=${*:-forms dtypes scan}
want() { [[ " $parts " == *" $1 "* ]]; }
mkdir -p "$out"
cli="node dist/cli.mjs"
exp() { $cli export --preset mamba2-130m --random-weights --seed 1 --logits last --force "$@" >/dev/null || echo "export failed: $*"; }
want forms && for f in chunked function contrib; do exp --ssd $f --out /tmp/m-$f; done
want scan && exp --ssd scan --out /tmp/m-scan
if want dtypes; then
  exp --dtype fp16 --out /tmp/m-fp16
  exp --dtype int8 --out /tmp/m-int8
  exp --dtype int4 --out /tmp/m-int4
  exp --chunk-size 64 --out /tmp/m-q64
  exp --chunk-size 128 --out /tmp/m-q128
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
b() { local name=$1 t=$2; shift 2; echo "== $name"; timeout $t $cli bench "$@" --json > "$out/$name.json" 2> "$out/$name.err"; echo "rc=$?"; }
want forms && b forms 300 /tmp/m-chunked /tmp/m-function /tmp/m-contrib --ep cuda,webgpu --lengths 128,512,2048,8192 --runs 3 --decode 64
want dtypes && b dtypes 240 /tmp/m-fp16 /tmp/m-int8 /tmp/m-int4 /tmp/m-q64 /tmp/m-q128 --ep cuda,webgpu --lengths 512,2048,8192 --runs 3 --decode 64
want scan && b scan 240 /tmp/m-scan --ep cuda,webgpu --lengths 512,2048 --runs 1 --warmup 0 --decode 16
