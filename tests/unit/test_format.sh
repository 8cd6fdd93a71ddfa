#!/usr/bin/env bash
# Every C source and header is in the house format (.clang-format): the
# check CI runs. `make format` (this script with --fix) rewrites them.
set -euo pipefail
src=${XS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
shopt -s nullglob
files=(lib/*/*.c lib/*/*.h include/xsell/*.h worker/*.c worker/*.h tests/*/*.c tests/*/*.h
       tests/unit/core/*.c)
cf=$(command -v clang-format || command -v clang-format-14 || true)
if [[ -z "$cf" ]]; then
    echo "clang-format not found (deploy/install-deps.sh installs it)" >&2
    exit 1
fi
if [[ "${1:-}" == "--fix" ]]; then
    "$cf" -i "${files[@]}"
    echo "formatted ${#files[@]} files"
    exit 0
fi
bad=$("$cf" --dry-run "${files[@]}" 2>&1 | grep -oE '^[^:]+:[0-9]+:[0-9]+: (warning|error)' |
      cut -d: -f1 | sort | uniq -c || true)
if [[ -n "$bad" ]]; then
    echo "not formatted (lines to change per file; run \`make format\`):" >&2
    echo "$bad" >&2
    exit 1
fi
echo "${#files[@]} files formatted"
