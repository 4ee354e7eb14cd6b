#!/usr/bin/env bash
# Checks that every C++ file in the repository is formatted as .clang-format says; with --fix
# it formats them in place. Needs clang-format 14 (Debian: clang-format-14).
set -euo pipefail
cd "$(dirname "$0")/.."
format=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$format" ] || { echo "check-format: clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cu' '*.cuh')
if [ "${1:-}" = "--fix" ]; then
  "$format" -i "${files[@]}"
  exit 0
fi
if ! "$format" --dry-run --Werror "${files[@]}" 2>/tmp/check-format.log; then
  grep -E '^[^ ].*: (warning|error)' /tmp/check-format.log | cut -d: -f1 | sort -u |
    sed 's/^/not formatted: /' >&2
  echo "run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
