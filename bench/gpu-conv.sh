source .gpu-kit/enter.sh cuda >/dev/null
for cv in conv shifted; do node dist/cli.mjs export --preset mamba2-130m --random-weights --seed 1 --logits last --segsum diff --conv $cv --out /tmp/c130-$cv --force >/dev/null 2>&1; done
timeout 150 node dist/cli.mjs bench /tmp/c130-conv /tmp/c130-shifted --ep cuda,webgpu --lengths 2048,8192 --runs 3 --decode 8 --json > $OUT/conv.json 2>/dev/null
cat $OUT/conv.json | grep -E '"(model|ep|2048|8192)"'
