#!/bin/sh
# fuzz/run.sh - runs one libFuzzer target from its seed corpus, the same way
# for make fuzz-smoke, CI and people.
#
#   fuzz/run.sh TARGET_BIN SECONDS|-runs=N [libFuzzer options...]
#
# TARGET_BIN is a built target (make fuzz: <build>/fuzz/fuzz_<name>); its
# seeds are fuzz/corpus/<name>/ beside this script. They are copied to a
# fresh scratch corpus, <dir of TARGET_BIN>/work/<name>/corpus (or
# $FUZZ_WORKDIR/<name>/corpus), so the source tree is never written; what
# the fuzzer finds goes to .../artifacts/. SECONDS stops it after that
# long, -runs=N after N executions; further options go to libFuzzer as
# they are (e.g. -max_total_time=600 beside -runs=N).
#
# Prints the executions, the time and the rate; exits non-zero, with the
# end of the fuzzer's log and the saved input, on any crash, sanitizer
# report, leak or timeout.
set -u

die() {
  echo "fuzz/run.sh: $*" >&2
  exit 2
}

[ $# -ge 2 ] || die "usage: fuzz/run.sh TARGET_BIN SECONDS|-runs=N [libFuzzer options...]"
bin=$1
budget=$2
shift 2
[ -x "$bin" ] || die "$bin: not an executable (build the targets with make fuzz)"
case $budget in
  -runs=*[!0-9]* | -runs=) die "$budget: expected -runs=N with N a number" ;;
  -runs=*) limit=$budget ;;
  '' | *[!0-9]*) die "$budget: expected a number of seconds or -runs=N" ;;
  *) limit=-max_total_time=$budget ;;
esac

here=$(cd "$(dirname "$0")" && pwd) || die "cannot find the script's directory"
name=$(basename "$bin")
name=${name%.exe}
name=${name#fuzz_}
seeds=$here/corpus/$name
[ -d "$seeds" ] || die "$seeds: no seed corpus for target $name"
work=${FUZZ_WORKDIR:-$(dirname "$bin")/work}/$name
rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts" || die "$work: cannot create"
cp "$seeds"/* "$work/corpus/" || die "cannot copy the seeds of $name"
dict=
case $name in
  *_parse) dict=-dict=$here/json.dict ;;
esac

# A finding stops the run (halt_on_error) with a symbolized stack.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

log=$work/fuzz.log
start=$(date +%s%N)
# -timeout: an input that takes seconds is a hang worth reporting.
"$bin" -print_final_stats=1 "$limit" $dict -timeout=25 -rss_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" >"$log" 2>&1
rc=$?
end=$(date +%s%N)

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
peak=$(sed -n 's/^stat::peak_rss_mb: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
inputs=$(ls "$work/corpus" | wc -l)
summary=$(awk -v e="${execs:-0}" -v s="$start" -v t="$end" 'BEGIN {
  d = (t - s) / 1e9; if (d <= 0) d = 1e-9;
  printf "%d executions in %.1f s (%.0f exec/s)", e, d, e / d }')
found=$(ls "$work/artifacts" 2>/dev/null)

if [ $rc -ne 0 ] || [ -n "$found" ] || [ -z "$execs" ]; then
  echo "fuzz $name: FAILED (exit $rc): $summary" >&2
  echo "--- end of $log:" >&2
  tail -n 60 "$log" >&2
  for f in $found; do
    echo "--- saved input: $work/artifacts/$f; reproduce: $bin $work/artifacts/$f" >&2
  done
  exit 1
fi
echo "fuzz $name: $summary, corpus $inputs inputs, peak RSS ${peak:-?} MB"
