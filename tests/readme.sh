#!/bin/sh
# The README cannot drift from what works:
# - its C example is examples/readme_example.c, which make check builds, and
#   it runs against tsesim-sim and gets a requestId;
# - each of its ```sh blocks runs as written, from a scratch directory in
#   which _build/ is this build directory (as in a clone after
#   `bash .ci/quickstart check`), and prints what the README says;
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

# The sh blocks, each in the scratch directory; a simulator a block leaves
# running is stopped when it ends.
build=$(cd "$top_builddir" && pwd)
mkdir "$dir/clone"
ln -s "$build" "$dir/clone/_build"
awk -v d="$dir" '/^```sh$/ {n++; f = d "/block" n ".sh"; print "trap '\''kill $! 2>/dev/null || true'\'' EXIT" > f; on=1; next}
  /^```$/ {on=0} on {print > f}' "$readme"
n=$(ls "$dir"/block*.sh 2>/dev/null | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 sh blocks, found $n"
run_block() {
  (cd "$dir/clone" && timeout 60 sh -eu "$dir/block$1.sh") >"$dir/out$1" 2>&1 ||
    { cat "$dir/out$1" >&2; fail "sh block $1 failed"; }
}
run_block 1
grep -qE '^requestId [0-9a-f-]{36}$' "$dir/out1" ||
  { cat "$dir/out1" >&2; fail "sh block 1 (readme_example) printed no requestId"; }
run_block 2
grep -q '"access_token"' "$dir/out2" ||
  { cat "$dir/out2" >&2; fail "sh block 2 (curl) got no access_token"; }
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
echo "readme: the example compiles and matches; the sh blocks run; $(echo $paths | wc -w) paths exist"
