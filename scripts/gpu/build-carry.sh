#!/usr/bin/env bash
# Builds the GPU configuration HERE (nvcc 13.0 = the GPU machine's CUDA) and packs what the GPU
# machine lacks into gpu-bundle/ (git-ignored), to be carried by the device tool:
#   gpu-bundle/bundle.tar.xz   bin/ (sparsebench + test binaries, stripped), lib/ (our Debian
#                              shared libraries from ldd), lib-fallback/ (libstdc++, libgcc_s: used
#                              only if the machine's are too old), dlmc/ (DLMC 0.9 sets from
#                              ../shared when present)
#   gpu-bundle/MANIFEST.txt    what is inside and the ldd resolution seen here
# Then checks the bundle locally: every library resolves from the bundle + system with a clean
# environment, `sparsebench info` runs, and the GPU tests skip (no GPU here).
# Usage: bash scripts/gpu/build-carry.sh        (JOBS=2 by default; SB_GPU_BUILD_DIR=build-gpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${SB_GPU_BUILD_DIR:-build-gpu}
JOBS=${JOBS:-2}
BUNDLE=$ROOT/gpu-bundle
STAGE=$ROOT/$BUILD/bundle-stage
CUDA_LIBDIRS="/usr/local/cuda/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib"

# Heavy optional parts off (libtorch is for training only); CUDA forced on; default architectures
# (90a 90 80-virtual: sm_90a + sm_90 machine code, compute_80 PTX).
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSB_TORCH=OFF -DSB_CUDA=ON -DSB_BUILD_TESTS=ON >/dev/null
BINS=(sparsebench_cli test_cuda test_kernels test_formats)
cmake --build "$BUILD" -j"$JOBS" --target "${BINS[@]}"

rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/lib-fallback"
cp "$BUILD/sparsebench" "$STAGE/bin/"
for t in test_cuda test_kernels test_formats; do
  f=$(find "$BUILD/tests" -maxdepth 2 -type f -name "$t" -perm -u+x | head -1)
  [ -n "$f" ] && cp "$f" "$STAGE/bin/" || echo "note: $t not built"
done
strip --strip-unneeded "$STAGE"/bin/*

# Libraries the GPU machine has: glibc's, the driver's (libcuda, libnvidia-ml: never carried, they
# must match its kernel module) and CUDA 13.0's (cudart, cuBLAS(Lt), cuSPARSE, nvJitLink).
# libstdc++ / libgcc_s: it has them (Ubuntu 24.04, Python 3.12), kept as a fallback only.
is_system() {
  case "$(basename "$1")" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|linux-vdso*) return 0 ;;
    libcuda.so.*|libnvidia-*|libcudart.so.*|libcublas*.so.*|libcusparse*.so.*|libnvJitLink.so.*) return 0 ;;
  esac
  case "$1" in /usr/local/cuda*) return 0 ;; esac
  return 1
}
for b in "$STAGE"/bin/*; do
  LD_LIBRARY_PATH= ldd "$b" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libstdc++.so.*|libgcc_s.so.*) cp -L "$lib" "$STAGE/lib-fallback/" ;;
    *) is_system "$lib" || cp -L "$lib" "$STAGE/lib/" ;;
  esac
done
strip --strip-unneeded "$STAGE"/lib/* "$STAGE"/lib-fallback/* 2>/dev/null || true

# DLMC at 90 % (the issue's target sets) from ../shared when present; data/dlmc travels with the repo.
SHARED_DLMC=$ROOT/../shared/data/dlmc
if [ -d "$SHARED_DLMC" ]; then
  for set in rn50/magnitude_pruning/0.9 transformer/magnitude_pruning/0.9; do
    [ -d "$SHARED_DLMC/$set" ] && mkdir -p "$STAGE/dlmc/$set" && cp "$SHARED_DLMC/$set"/*.smtx* "$STAGE/dlmc/$set/"
  done
  cp "$SHARED_DLMC/rn50_batchsizes.txt" "$STAGE/dlmc/" 2>/dev/null || true
fi

# Local check with a clean environment: everything resolves from the bundle + system + CUDA.
LDP="$STAGE/lib"
for d in $CUDA_LIBDIRS; do [ -d "$d" ] && LDP="$LDP:$d"; done
missing=0
for b in "$STAGE"/bin/*; do
  if env -i LD_LIBRARY_PATH="$LDP" ldd "$b" | grep -q "not found"; then
    echo "MISSING libraries for $b:"; env -i LD_LIBRARY_PATH="$LDP" ldd "$b" | grep "not found"; missing=1
  fi
done
[ "$missing" = 0 ] || { echo "bundle incomplete"; exit 1; }
env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$LDP" "$STAGE/bin/sparsebench" info >/dev/null
env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$LDP" "$STAGE/bin/test_cuda" --gtest_brief=1 | tail -3

mkdir -p "$BUNDLE"
rm -f "$BUNDLE"/bundle.tar.xz
tar -C "$STAGE" -cf - . | xz -T"$JOBS" -6 > "$BUNDLE/bundle.tar.xz"
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
  echo "nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "CUDA targets: $(grep -o "arch=[^ ]*" "$BUILD/build.ninja" | sort -u | tr "\n" " ")"
  (cd "$STAGE" && find . -type f -printf '%10s %p\n' | sort -k2)
  echo "ldd of bin/sparsebench here:"; env -i LD_LIBRARY_PATH="$LDP" ldd "$STAGE/bin/sparsebench"
} > "$BUNDLE/MANIFEST.txt"
echo "unpacked: $(du -sh "$STAGE" | cut -f1)   carried: $(du -sh "$BUNDLE" | cut -f1) (limit: 64 MiB with the repo)"
