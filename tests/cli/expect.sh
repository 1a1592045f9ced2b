#!/usr/bin/env bash
# expect.sh STATUS REGEX -- COMMAND...
#   STATUS: "ok" (exit 0) or "fail" (non-zero exit, no crash: 1..125)
#   REGEX:  an extended regular expression the combined output must match (one line for errors)
set -u
want=$1 regex=$2; shift 3
out=$("$@" 2>&1); rc=$?
if [[ $want == ok && $rc -ne 0 ]]; then echo "expected exit 0, got $rc; output:"; echo "$out"; exit 1; fi
if [[ $want == fail && ( $rc -eq 0 || $rc -gt 125 ) ]]; then echo "expected a clean failure (1..125), got $rc; output:"; echo "$out"; exit 1; fi
if ! grep -Eq -- "$regex" <<<"$out"; then echo "output does not match /$regex/:"; echo "$out"; exit 1; fi
if [[ $want == fail ]] && [[ $(grep -c . <<<"$out") -gt 3 ]]; then echo "error output longer than expected:"; echo "$out"; exit 1; fi
echo "ok: $*"
