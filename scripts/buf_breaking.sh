#!/usr/bin/env bash
# Runs `buf breaking` against main when main exists locally and already has contracts;
# a contract that has landed only changes compatibly (DESIGN.md §3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=tools/node_modules/.bin/buf
if ! git rev-parse --verify --quiet main >/dev/null; then
  echo "buf breaking: no local main branch; skipped"
  exit 0
fi
if ! git cat-file -e main:buf.yaml 2>/dev/null; then
  echo "buf breaking: main has no buf.yaml yet; skipped"
  exit 0
fi
"$BUF" breaking --against '.git#branch=main'
