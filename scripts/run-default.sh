#!/usr/bin/env bash
# The main job of `make run`. Until the study (M5) lands: the machine report, what a pruned weight
# costs in each storage format, and a short kernel comparison against oneDNN.
set -euo pipefail
build=${1:-build}
sb="$build/sparsebench"
echo "== sparsebench info"
"$sb" info
echo
echo "== a BERT-base 768x3072 weight, 90 % bank-balanced: bytes per storage format"
"$sb" formats --shape 768x3072 --pattern balanced:bank=32 --sparsity 0.9
echo
echo "== a real pruned ResNet-50 layer (DLMC, 90 %): bytes per storage format"
"$sb" formats --matrix data/dlmc/rn50/magnitude_pruning/0.9/bottleneck_2_block_group1_1_1.smtx.gz
if "$sb" kernels --help >/dev/null 2>&1; then
  echo
  echo "== SpMM on BERT-base 768x768x128: sparse kernels vs oneDNN dense (same run)"
  "$sb" kernels --shapes 768x768x128 --sparsity 0.7,0.9 --patterns unstructured,balanced:bank=32
fi
