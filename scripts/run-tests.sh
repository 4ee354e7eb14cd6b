#!/usr/bin/env bash
# Builds modelpool and runs every CPU test. Installs what it needs on a fresh Debian 12.
source "$(dirname "$0")/setup.sh"
build=${MODELPOOL_BUILD_DIR:-$MODELPOOL_ROOT/build}
modelpool_configure "$build" -DMODELPOOL_BUILD_TESTS=ON -DMODELPOOL_BUILD_BENCHMARKS=ON
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure
