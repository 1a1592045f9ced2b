#!/usr/bin/env bash
# The main job of `make run`. Until the study (M5) lands: the machine report and a demo of
# the formats and pruning patterns.
set -euo pipefail
build=${1:-build}
"$build/sparsebench" info
