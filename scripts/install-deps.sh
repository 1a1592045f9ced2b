#!/usr/bin/env bash
# Installs the Debian packages sparsebench needs, and only those that are missing.
# Idempotent: when everything is present it changes nothing and runs no apt-get update.
# Usage: scripts/install-deps.sh [--minimal]   (--minimal skips the optional heavy ones: libtorch, onnx)
set -euo pipefail

required=(
  build-essential cmake ninja-build pkg-config zlib1g-dev
  libdnnl-dev libeigen3-dev libxsmm-dev libxnnpack-dev libpthreadpool-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libomp-dev
  chromium
)
# npm fetches the report's chart libraries (vega, vega-lite, vega-embed). A NodeSource nodejs
# already ships its own npm, and Debian's npm package would fight it: install it only when absent.
command -v npm >/dev/null 2>&1 || required+=(npm)
# libopenblas0-openmp: libtorch's BLAS (the OpenMP build shares libgomp's threads with libtorch; the
# pthread build adds a second pool that fights it); without it libtorch runs on the netlib reference BLAS and
# would be a weak baseline (and training slow). sparsebench sets OPENBLAS_CORETYPE (tools/main.cpp).
optional=(libtorch-dev libopenblas0-openmp libonnx-dev libprotobuf-dev dataset-fashion-mnist)
[[ "${1:-}" == "--minimal" ]] || required+=("${optional[@]}")

missing=()
for p in "${required[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#required[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
