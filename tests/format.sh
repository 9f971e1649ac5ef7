#!/bin/sh
# The formatting check (STYLE.md section 10): every C and C++ source of the
# project is as clang-format, with the tree's .clang-format, writes it.
# Fix a failure with: clang-format -i FILE
set -eu
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null 2>&1 || {
  echo "format: $CLANG_FORMAT not found: install the Debian package clang-format" >&2; exit 1; }
cd "$top_srcdir"
[ -f .clang-format ] || { echo "format: no .clang-format in $top_srcdir" >&2; exit 1; }
files=$(find include lib tools tests examples bench fuzz -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) 2>/dev/null | sort)
[ -n "$files" ] || { echo "format: no sources found" >&2; exit 1; }
bad=0
n=0
for f in $files; do
  n=$((n + 1))
  if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" 2>/dev/null; then
    echo "format: $f is not formatted (clang-format -i $f)" >&2
    bad=$((bad + 1))
  fi
done
[ "$bad" -eq 0 ] || { echo "format: $bad of $n files need clang-format" >&2; exit 1; }
echo "format: $n files as .clang-format says"
