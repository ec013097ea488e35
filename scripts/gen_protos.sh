#!/usr/bin/env bash
# Regenerates gen/: Python messages, typing stubs and gRPC stubs for our
# protos, and the descriptor set Envoy's transcoder loads.
set -euo pipefail
# Usage: scripts/gen_protos.sh [OUT_DIR]   (default gen/)
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-gen}
PROTOS=$(find protos -name '*.proto' | sort)

rm -rf "$OUT/betterworld" "$OUT/descriptor.pb"
mkdir -p "$OUT"

# Python stubs only for our own files: generating google/rpc here would shadow
# the googleapis-common-protos package.
"$PY" -m grpc_tools.protoc -I protos -I third_party/googleapis \
  --python_out="$OUT" --mypy_out="$OUT" --grpc_python_out="$OUT" --mypy_grpc_out="$OUT" \
  $PROTOS

# Descriptor set for Envoy: imports included, plus the rich error detail types
# so google.rpc.Status details render as JSON.
"$PY" -m grpc_tools.protoc -I protos -I third_party/googleapis \
  --include_imports --include_source_info=false \
  --descriptor_set_out="$OUT/descriptor.pb" \
  $PROTOS google/rpc/status.proto google/rpc/error_details.proto

# Packages need __init__.py files for mypy and for tools that do not handle
# namespace packages.
find "$OUT/betterworld" -type d -exec touch {}/__init__.py \;
