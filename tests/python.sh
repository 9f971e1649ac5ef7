#!/bin/sh
# The Python package's tests (bindings/python/tests, unittest) against the
# in-tree library, tools/tsesim-sim and tests/py_layout:
#   TSESIM_LIBRARY  lib/.libs/libtsesim.so.0 of this build
#   TSESIM_SIM      tools/tsesim-sim
#   TSESIM_LAYOUT   tests/py_layout (sizeof/offsetof of the mirrored structs)
#   TSESIM_SRCDIR   the source tree (tests/data)
# The package is imported from the source tree, and no bytecode is written
# there (distcheck's source tree is read-only).
#
# A library built with a sanitizer (ASan, TSan, UBSan) cannot be loaded into
# an uninstrumented python3; those passes cover the C paths (issue 13), so
# this test reports SKIP (77) there and only there.
set -eu
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || {
  echo "python: $PYTHON not found: install the Debian packages python3 and python3-venv" \
    "(bash .ci/quickstart check does)" >&2
  exit 1
}
abs_srcdir=$(cd "$top_srcdir" && pwd)
abs_builddir=$(cd "$top_builddir" && pwd)
lib=$abs_builddir/lib/.libs/libtsesim.so.0
[ -f "$lib" ] || { echo "python: no $lib: build the library first" >&2; exit 1; }
if ${NM:-nm} -D "$lib" 2>/dev/null | grep -Eq ' U __(asan|tsan|ubsan|msan)_'; then
  echo "python: $lib is built with a sanitizer; the Python tests run in the plain build"
  exit 77
fi
TSESIM_LIBRARY=$lib
TSESIM_SIM=$abs_builddir/tools/tsesim-sim
TSESIM_LAYOUT=$abs_builddir/tests/py_layout
TSESIM_SRCDIR=$abs_srcdir
PYTHONPATH=$abs_srcdir/bindings/python${PYTHONPATH:+:$PYTHONPATH}
PYTHONDONTWRITEBYTECODE=1
export TSESIM_LIBRARY TSESIM_SIM TSESIM_LAYOUT TSESIM_SRCDIR PYTHONPATH PYTHONDONTWRITEBYTECODE
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || {
  echo "python: $("$PYTHON" --version 2>&1) is too old: the package needs Python 3.9 or later" >&2
  exit 1
}
cd "$abs_builddir"
exec "$PYTHON" -m unittest discover -s "$abs_srcdir/bindings/python/tests" -t "$abs_srcdir/bindings/python/tests" -v
