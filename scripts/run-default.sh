#!/usr/bin/env bash
# The main job of `make run`: the machine report, then the default study (studies/default.toml)
# into ./sparsebench-results (SB_RESULTS overrides), continued with --resume when an earlier run
# left a database there. Ends with where the report is.
set -euo pipefail
build=${1:-build}
sb="$build/sparsebench"
out=${SB_RESULTS:-sparsebench-results}
echo "== sparsebench info"
"$sb" info
echo
echo "== the default study (studies/default.toml) -> $out"
args=(study studies/default.toml --out "$out")
if [ -f "$out/results.db" ]; then
  echo "   $out/results.db exists: resuming it (delete the directory to start afresh)"
  args+=(--resume)
fi
"$sb" "${args[@]}"
