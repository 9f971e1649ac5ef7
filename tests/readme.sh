#!/bin/sh
# The README cannot drift from what works:
# - its C example is examples/readme_example.c, which make check builds, and
#   it runs against tsesim-sim and gets a requestId;
# - its C++ example is examples/cpp/readme_example.cc, which make check
#   builds with -std=c++17 -Wall -Wextra -pedantic -Werror;
# - its Python program is saved as provision.py in the scratch clone below, where
#   its sh block installs the package in a venv (offline: PIP_NO_INDEX) and
#   runs it against tsesim-sim with this build's library;
# - each of its ```sh blocks runs as written, from a scratch directory in
#   which _build/ is this build directory and examples/ and bindings/ are the
#   source tree's (as in a clone after `bash .ci/quickstart check`), and
#   prints what the README says;
# - every path it names exists: in the source tree, or under _build/ for
#   what the build makes.
set -eu
. "$top_srcdir/tests/sim_start.sh"
sim_start readme
dir=$(cd "$dir" && pwd) # the blocks run elsewhere
readme=$top_srcdir/README
fail() { echo "readme: $1" >&2; exit 1; }

awk '/^```c$/ {on=1; next} /^```$/ {if (on) exit} on' "$readme" > "$dir/readme.c"
if ! diff -u "$top_srcdir/examples/readme_example.c" "$dir/readme.c" >&2; then
  fail "the README's C example differs from examples/readme_example.c"
fi
out=$(${RUN_EXAMPLE:-} "$top_builddir/examples/readme_example" "$base")
printf '%s\n' "$out" | grep -qE '^requestId [0-9a-f-]{36}$' || fail "the example printed: $out"
awk '/^```cpp$/ {on=1; next} /^```$/ {if (on) exit} on' "$readme" > "$dir/readme.cc"
if ! diff -u "$top_srcdir/examples/cpp/readme_example.cc" "$dir/readme.cc" >&2; then
  fail "the README's C++ example differs from examples/cpp/readme_example.cc"
fi

# The sh blocks, each in the scratch directory; a simulator a block leaves
# running is stopped when it ends.
build=$(cd "$top_builddir" && pwd)
src=$(cd "$top_srcdir" && pwd)
mkdir "$dir/clone"
ln -s "$build" "$dir/clone/_build"
ln -s "$src/examples" "$dir/clone/examples"
ln -s "$src/bindings" "$dir/clone/bindings"
awk '/^```python$/ {n++; on = n == 1; next} /^```$/ {on=0} on' "$readme" > "$dir/clone/provision.py"
[ -s "$dir/clone/provision.py" ] || fail "no \`\`\`python block"
awk -v d="$dir" '/^```sh$/ {n++; f = d "/block" n ".sh"; print "trap '\''kill $! 2>/dev/null || true'\'' EXIT" > f; on=1; next}
  /^```$/ {on=0} on {print > f}' "$readme"
n=$(ls "$dir"/block*.sh 2>/dev/null | wc -l)
[ "$n" -eq 4 ] || fail "expected 4 sh blocks, found $n"
# pip must fetch nothing (PIP_NO_INDEX), nor write bytecode into the source
# tree when it runs the package's build backend from it.
run_block() {
  (cd "$dir/clone" && PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
    timeout 120 sh -eu "$dir/block$1.sh") >"$dir/out$1" 2>&1 ||
    { cat "$dir/out$1" >&2; fail "sh block $1 failed"; }
}
expect_out() { # BLOCK WHAT ERE
  grep -qE -- "$3" "$dir/out$1" || { cat "$dir/out$1" >&2; fail "sh block $1 ($2) printed no $3"; }
}
run_block 1
expect_out 1 readme_example '^requestId [0-9a-f-]{36}$'
# A library built with a sanitizer cannot be loaded into an uninstrumented
# python3 (tests/python.sh says the same): the plain build runs block 2.
if ${NM:-nm} -D "$build/lib/.libs/libtsesim.so.0" 2>/dev/null | grep -Eq ' U __(asan|tsan|ubsan|msan)_'; then
  echo "readme: sh block 2 (Python) runs in the plain build, not with a sanitizer's library"
else
  run_block 2
  expect_out 2 "pip install" '^Successfully installed tsesim-[0-9.]+$'
  expect_out 2 provision.py '^chunk 0 accepted [0-9a-f-]{36}$'
  expect_out 2 provision.py '^callback line 12 warning Warning$'
  expect_out 2 provision.py '^callback line 12 success SUCCESS$'
  expect_out 2 provision.py '^callback line 11 failed Failed$'
  expect_out 2 provision.py '^devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4$'
  expect_out 2 provision.py "^examples/devices.csv:5: imei: check digit 4 does not match \\(expected 3\\)$"
fi
run_block 3
expect_out 3 readme_example.cc '^callback line 11 failed$'
expect_out 3 readme_example.cc '^devices 11 success 6 failed 1 invalid 4$'
run_block 4
expect_out 4 curl '"access_token"'
[ ! -e "$dir/clone/job.db" ] || fail "an sh block left job.db behind"
[ ! -e "$dir/clone/venv" ] || fail "an sh block left venv behind"
[ ! -e "$dir/clone/sim.port" ] || fail "an sh block left sim.port behind"

# Every path named in backquotes or in an indented command line.
paths=$({ grep -o '`[^`]*`' "$readme" | tr -d '`'; grep -E '^    [^ ]' "$readme"; } |
  tr ' ' '\n' | grep / | grep -vE '^(/|https?:|\$|\(|")|[*)]' | sort -u)
missing=""
for p in $paths install.sh; do
  case "$p" in
    _build/*) [ -e "$build/${p#_build/}" ] || missing="$missing $p" ;;
    *) [ -e "$top_srcdir/$p" ] || missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] || fail "the README names paths that do not exist:$missing"
echo "readme: the C and C++ examples compile and match; the Python program and the sh blocks run; $(echo $paths | wc -w) paths exist"
