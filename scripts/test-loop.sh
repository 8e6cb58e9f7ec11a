#!/usr/bin/env bash
# Flake hunt (docs/runbook.md, "Flaky tests"): run the whole suite N times in a row on a fresh clone,
# exactly as CI does (`npm ci && npm test`), and stop at the first failure, keeping its log.
#   scripts/test-loop.sh [N=10] [REF=HEAD]
set -euo pipefail
runs="${1:-10}"
ref="${2:-HEAD}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/fsmesh-loop-XXXXXX)"
git clone -q "$repo" "$work/repo"
cd "$work/repo"
git checkout -q "$ref"
npm ci --silent >"$work/npm-ci.log" 2>&1 || { echo "npm ci failed: $work/npm-ci.log"; exit 1; }
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if npm test >"$work/run-$i.log" 2>&1; then
    echo "{\"run\":$i,\"ok\":true,\"wall_s\":$(( $(date +%s) - start ))}"
  else
    echo "{\"run\":$i,\"ok\":false,\"wall_s\":$(( $(date +%s) - start )),\"log\":\"$work/run-$i.log\"}"
    grep -E "^not ok|^# fail|✖" "$work/run-$i.log" | head -20
    exit 1
  fi
done
echo "{\"runs\":$runs,\"all_passed\":true,\"commit\":\"$(git rev-parse --short HEAD)\"}"
rm -rf "$work"
