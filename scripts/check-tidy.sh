#!/usr/bin/env bash
# Runs clang-tidy (the repository's .clang-tidy) over the libtorch-free sources: base, devices,
# pool, text, the generic worker pool and the model file readers. Needs clang-tidy-14 and
# clang-14; configures a compile-commands folder of its own (build-tidy).
set -euo pipefail
cd "$(dirname "$0")/.."
tidy=$(command -v clang-tidy-14 || command -v clang-tidy)
CC=clang-14 CXX=clang++-14 cmake -S . -B build-tidy -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DMODELPOOL_BUILD_TESTS=OFF -DMODELPOOL_BUILD_BENCHMARKS=OFF -DMODELPOOL_BUILD_EXAMPLES=OFF \
  >/dev/null
# The generated header the sources include.
cmake --build build-tidy --target modelpool_core >/dev/null
mapfile -t files < <(ls lib/base/*.cc lib/devices/*.cc lib/pool/*.cc lib/text/*.cc \
                        lib/workers/generic_worker_pool.cc lib/models/formats/json_file.cc \
                        lib/models/formats/safetensors.cc 2>/dev/null)
findings=$(printf '%s\n' "${files[@]}" |
           xargs -P "$(nproc)" -n 4 "$tidy" -p build-tidy --quiet 2>&1 | grep -E "(warning|error):" || true)
if [ -n "$findings" ]; then
  echo "$findings" >&2
  echo "check-tidy: findings above" >&2
  exit 1
fi
echo "check-tidy: ${#files[@]} files clean"
