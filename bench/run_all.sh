#!/usr/bin/env bash
# Runs every nfqtrace benchmark, one after another, each against the
# untraced baseline in its own namespace network, and prints all the tables.
#
#   sudo bash bench/run_all.sh [/path/to/nfqtrace] [--quick] [NAME...]
#
# Default binary: build/nfqtrace. --quick: the smoke form (under ~2 min;
# results in bench/results/quick/), else the full one (~10-15 min; results
# in bench/results/). NAMEs pick benchmarks (throughput latency
# time_to_path harm scale cost). Writes summary.md (machine, kernel, binary,
# every table) and logs/NAME.log to the results directory.
# Exit status: 0 when every benchmark measured (whatever the numbers), 1 when
# one could not (its log is printed).
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$DIR/.." && pwd)
ALL=(throughput latency time_to_path harm scale cost)
NFQ="" QUICK=() PICKED=()
for arg in "$@"; do
  case $arg in
    --quick) QUICK=(--quick) ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) if [[ " ${ALL[*]} " == *" $arg "* ]]; then PICKED+=("$arg"); else NFQ=$arg; fi ;;
  esac
done
(( ${#PICKED[@]} )) || PICKED=("${ALL[@]}")
NFQ=${NFQ:-$REPO/build/nfqtrace}
if [[ ! -x $NFQ ]]; then
  echo "ERROR: nfqtrace binary '$NFQ' not found (build it, or give its path)" >&2
  exit 1
fi
if (( EUID != 0 )); then echo "ERROR: the benchmarks need root (network namespaces)" >&2; exit 1; fi
if [[ -n ${BENCH_RESULTS:-} ]]; then OUT=$BENCH_RESULTS
elif (( ${#QUICK[@]} )); then OUT="$DIR/results/quick"
else OUT="$DIR/results"; fi
export BENCH_RESULTS=$OUT
mkdir -p "$OUT/logs"

mode=full; (( ${#QUICK[@]} )) && mode=quick
version=$("$NFQ" --version 2>/dev/null | head -n1)
# The source the binary was built from (its CMake cache), and its commit.
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$(dirname "$NFQ")/CMakeCache.txt" 2>/dev/null)
src=${src:-unknown}
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
if [[ $commit != "not a git checkout" ]]; then
  dirty=$(git -C "$src" status --porcelain -- src include tools CMakeLists.txt 2>/dev/null | wc -l)
  (( dirty > 0 )) && commit+=" (+$dirty uncommitted files in src/ include/ tools/)"
fi
{
  echo "# nfqtrace benchmarks ($mode)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- kernel: $(uname -r); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
  echo "- binary: $NFQ ($version), built from $src (commit: $commit)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$OUT/summary.md"

failed=() start_all=$(date +%s)
for name in "${PICKED[@]}"; do
  log="$OUT/logs/$name.log" start=$(date +%s)
  bash "$DIR/bench_$name.sh" "$NFQ" "${QUICK[@]}" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if (( rc == 0 )) && [[ -s $OUT/$name.md ]]; then
    printf 'ok     %-14s %4d s\n' "$name" "$secs"
    { cat "$OUT/$name.md"; echo; } >>"$OUT/summary.md"
  else
    printf 'FAIL   %-14s %4d s  (exit %d, log %s)\n' "$name" "$secs" "$rc" "$log"
    failed+=("$name")
    { echo "### $name: FAILED (exit $rc), see logs/$name.log"; echo; } >>"$OUT/summary.md"
  fi
done
echo "- total time: $(( $(date +%s) - start_all )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/summary.md"

for name in "${failed[@]}"; do
  printf '\n######## %s (log) ########\n' "$name"
  tail -n 60 "$OUT/logs/$name.log"
done
echo
cat "$OUT/summary.md"
echo
echo "(summary: $OUT/summary.md)"
(( ${#failed[@]} == 0 ))
