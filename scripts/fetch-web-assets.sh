#!/usr/bin/env bash
# Fetches the chart libraries the HTML report inlines (vega, vega-lite, vega-embed) from the npm
# registry into DIR/node_modules (default DIR: build/web). Debian's node-vega has no vega-lite, hence
# npm. Idempotent: when the pinned versions are present it does nothing and needs no network.
# Usage: scripts/fetch-web-assets.sh [DIR]
set -euo pipefail

# Mutually compatible pins: vega-lite 5.23 needs vega ^5.24; vega-embed 6.x accepts vega ^5.21 and
# any vega-lite.
packages=(vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0)
dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/build/web}"

have() {  # have NAME VERSION: the package is installed at that version with its minified build
  local pkg="$dir/node_modules/$1"
  [[ -f "$pkg/package.json" ]] || return 1
  grep -q "\"version\": \"$2\"" "$pkg/package.json" || return 1
  [[ -f "$pkg/build/$1.min.js" ]]
}

all=1
for p in "${packages[@]}"; do
  have "${p%@*}" "${p##*@}" || all=0
done
if ((all)); then
  echo "fetch-web-assets: ${packages[*]} present in $dir"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-web-assets: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "fetch-web-assets: npm install ${packages[*]} into $dir"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${packages[@]}"
for p in "${packages[@]}"; do
  have "${p%@*}" "${p##*@}" || { echo "fetch-web-assets: ${p} missing after npm install" >&2; exit 1; }
done
