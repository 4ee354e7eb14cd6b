#!/usr/bin/env bash
# Builds modelpool's examples and runs the main one, passing on any arguments.
# Installs what it needs on a fresh Debian 12.
source "$(dirname "$0")/setup.sh"
build=${MODELPOOL_BUILD_DIR:-$MODELPOOL_ROOT/build}
modelpool_configure "$build" -DMODELPOOL_BUILD_TESTS=OFF -DMODELPOOL_BUILD_BENCHMARKS=OFF
cmake --build "$build" --target custom_manager
exec "$build/examples/custom_manager" "$@"
