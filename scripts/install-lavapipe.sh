#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) from Debian bookworm-backports so that
# onnxruntime-node's WebGPU EP runs on a machine without a GPU (correct numbers, no speed).
# Used by CI to test WebGPU numerics; needs root. Debian 12 (bookworm) only; Mesa 22 in bookworm
# itself is too old for Dawn, hence backports.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && dpkg -s libvulkan1 >/dev/null 2>&1; then
  echo "lavapipe: already installed"; exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
uri=$(sed -n 's/^URIs: //p' "$src" 2>/dev/null | head -1)
[ -n "$uri" ] || { echo "lavapipe: no Debian sources in $src; skipping (WebGPU tests will be skipped)" >&2; exit 0; }
printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
  > /etc/apt/sources.list.d/backports.sources
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "lavapipe: installed"
