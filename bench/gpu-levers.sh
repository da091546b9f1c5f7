#!/usr/bin/env bash
# Issue 9 levers on the GPU machine, one call: the MatMul ceiling on the model's shapes, what the If
# costs in decode (export --paths), and chunk size × segsum form for prefill; CUDA and WebGPU EPs.
#   usage (on the GPU machine, after `source .gpu-kit/enter.sh cuda`): bash bench/gpu-levers.sh OUTDIR
set -uo pipefail
out=${1:?usage: gpu-levers.sh OUTDIR}
mkdir -p "$out"
cli="node dist/cli.mjs"
exp() { $cli export --preset mamba2-130m --random-weights --seed 1 --logits last --force "$@" >/dev/null || echo "export failed: $*"; }
for p in both step sequence; do exp --paths $p --out /tmp/p130-$p; done
for q in 64 128 256; do for s in stable diff; do exp --chunk-size $q --segsum $s --out /tmp/s130-q$q-$s; done; done
for ep in cuda webgpu; do
  for L in 2048 8192; do timeout 60 node dist/bench/ceiling.mjs --ep $ep --L $L >> "$out/ceiling.jsonl" 2>>"$out/ceiling.err"; done
  timeout 120 node dist/bench/step-paths.mjs /tmp/p130 --ep $ep --tokens 64 --runs 3 > "$out/step-paths-$ep.md" 2>>"$out/step-paths.err"
done
timeout 330 $cli bench /tmp/s130-q256-stable /tmp/s130-q256-diff /tmp/s130-q128-stable /tmp/s130-q128-diff /tmp/s130-q64-stable /tmp/s130-q64-diff \
  --ep cuda,webgpu --lengths 2048,8192 --runs 3 --decode 8 --json > "$out/levers.json" 2> "$out/levers.err"
echo "levers rc=$?"
