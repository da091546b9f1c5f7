#!/usr/bin/env bash
# Issue 9 on the GPU machine, one call: what bounds decode (per-node cost and state I/O per EP,
# bench/node-overhead.ts), the leaner step and the fused RMSNorm against standard-op norms, prefill
# of the current default layout, and the SSD-vs-attention crossover (bench/crossover.ts).
#   usage (on the GPU machine, after `source .gpu-kit/enter.sh cuda`; needs `npm run bundle`):
#     bash bench/gpu-decode.sh OUTDIR [main] [crossover]   (default: both; each fits one 10-minute call)
set -uo pipefail
out=${1:?usage: gpu-decode.sh OUTDIR [main] [crossover]}
shift; parts=${*:-main crossover}
want() { [[ " $parts " == *" $1 "* ]]; }
mkdir -p "$out"
cli="node dist/cli.mjs"
if want main; then
exp() { $cli export --preset mamba2-130m --random-weights --seed 1 --logits last --force "$@" >/dev/null || echo "export failed: $*"; }
exp --out /tmp/d-fused
exp --rmsnorm ops --out /tmp/d-ops
exp --dtype fp16 --out /tmp/d-fp16
exp --segsum diff --out /tmp/d-diff
exp --paths step --out /tmp/d-step
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
for ep in cuda webgpu; do
  echo "== node overhead $ep"
  timeout 120 node dist/bench/node-overhead.mjs --ep $ep --nodes 822 --json "$out/node-overhead.jsonl" >> "$out/node-overhead.md" 2>>"$out/node-overhead.err"
  timeout 90 node dist/bench/profile.mjs /tmp/d-step --ep $ep --L 1 --runs 10 --top 14 >> "$out/profile-step.txt" 2>>"$out/profile.err"
done
echo "== bench"
timeout 330 $cli bench /tmp/d-fused /tmp/d-ops /tmp/d-fp16 /tmp/d-diff --ep cuda,webgpu --lengths 512,2048,8192 --runs 3 --decode 64 --json \
  > "$out/bench.json" 2> "$out/bench.err"
echo "bench rc=$?"
fi
if want crossover; then
echo "== crossover"
timeout 420 node dist/bench/crossover.mjs --ep cuda --check --lengths 2048,4096,8192,16384 --json "$out/crossover.jsonl" \
  > "$out/crossover.md" 2> "$out/crossover.err"
echo "crossover rc=$?"
fi
