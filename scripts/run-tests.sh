#!/usr/bin/env bash
# Builds modelpool and runs every CPU test. Installs what it needs on a fresh Debian 12.
source "$(dirname "$0")/setup.sh"
build=${MODELPOOL_BUILD_DIR:-$MODELPOOL_ROOT/build}
modelpool_configure "$build" -DMODELPOOL_BUILD_TESTS=ON -DMODELPOOL_BUILD_BENCHMARKS=ON
cmake --build "$build"
# The OpenAI client for Node, which server_openai_client_test drives (skipped without npm).
if command -v npm >/dev/null && [ ! -d "$build/node/node_modules/openai" ]; then
  mkdir -p "$build/node" && npm install --prefix "$build/node" --no-audit --no-fund --silent openai@4
fi
ctest --test-dir "$build" --output-on-failure
