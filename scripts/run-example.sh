#!/usr/bin/env bash
# Builds modelpool's examples and runs the main one, embed: sentence vectors for a file of
# texts. Without arguments it embeds examples/embed/sample_texts.txt with the small model
# bundled with modelpool and writes build/vectors.npy; arguments go to embed as they are
# (--help lists them). Installs what it needs on a fresh Debian 12.
source "$(dirname "$0")/setup.sh"
build=${MODELPOOL_BUILD_DIR:-$MODELPOOL_ROOT/build}
modelpool_configure "$build"
cmake --build "$build" --target embed
if [ $# -eq 0 ]; then
  set -- --input "$MODELPOOL_ROOT/examples/embed/sample_texts.txt" --output "$build/vectors.npy"
fi
exec "$build/examples/embed/modelpool-embed" "$@"
