#!/usr/bin/env bash
# Runs every nfqtrace benchmark, one after another, each against the
# untraced baseline in its own namespace network, and prints all the tables.
#
#   sudo bash bench/run_all.sh [/path/to/nfqtrace] [--quick] [--before PATH] [NAME...]
#
# Default binary: build/nfqtrace; the bench tools are the helpers built with
# it (helpers/ next to it, or NFQTRACE_HELPERS=DIR). --quick: the smoke form
# scripts/test runs (about 2 min; results in bench/results/quick/,
# git-ignored), else the full one (~15 min; results in bench/results/).
# BENCH_RESULTS=DIR: results there instead. NAMEs pick benchmarks (throughput
# latency time_to_path harm scale cost). Writes summary.md (machine, kernel,
# binary, every table) and logs/NAME.log to the results directory.
# --before PATH (or NFQTRACE_BEFORE=PATH): an earlier nfqtrace (e.g. the last
# release, built with its own helpers or not) measured side by side with the
# first in the benchmarks that compare (throughput latency time_to_path).
# Exit status: 0 when every benchmark measured (whatever the numbers) and
# left nothing behind; 1 when one could not measure (its log is printed) or
# left a namespace or a process running (reported, then removed).
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$DIR/.." && pwd)
ALL=(throughput latency time_to_path harm scale cost)
NFQ="" QUICK=() PICKED=() BEFORE=${NFQTRACE_BEFORE:-}
while (( $# )); do
  arg=$1; shift
  case $arg in
    --quick) QUICK=(--quick) ;;
    --before=*) BEFORE=${arg#--before=} ;;
    --before) (( $# )) || { echo "--before needs a path" >&2; exit 2; }; BEFORE=$1; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) if [[ " ${ALL[*]} " == *" $arg "* ]]; then PICKED+=("$arg"); else NFQ=$arg; fi ;;
  esac
done
unset NFQTRACE_BEFORE   # the benchmarks get the copy below, as an argument
if [[ -n $BEFORE && ! -x $BEFORE ]]; then
  echo "ERROR: the earlier binary '$BEFORE' (--before) not found" >&2
  exit 1
fi
(( ${#PICKED[@]} )) || PICKED=("${ALL[@]}")
NFQ=${NFQ:-$REPO/build/nfqtrace}
if [[ ! -x $NFQ ]]; then
  echo "ERROR: nfqtrace binary '$NFQ' not found (build it, or give its path)" >&2
  exit 1
fi
if (( EUID != 0 )); then echo "ERROR: the benchmarks need root (network namespaces)" >&2; exit 1; fi
# The helpers built with the binary given: the benchmarks run a copy of it
# (below), whose directory has none.
NFQTRACE_HELPERS=${NFQTRACE_HELPERS:-$(dirname "$NFQ")/helpers}
if [[ ! -d $NFQTRACE_HELPERS ]]; then
  echo "ERROR: no helper programs in '$NFQTRACE_HELPERS': build the project (cmake --build build)" >&2
  exit 1
fi
NFQTRACE_HELPERS=$(cd "$NFQTRACE_HELPERS" && pwd)
export NFQTRACE_HELPERS
if [[ -n ${BENCH_RESULTS:-} ]]; then OUT=$BENCH_RESULTS
elif (( ${#QUICK[@]} )); then OUT="$DIR/results/quick"
else OUT="$DIR/results"; fi
export BENCH_RESULTS=$OUT
mkdir -p "$OUT/logs"

mode=full; (( ${#QUICK[@]} )) && mode=quick
# One binary for the whole run: a copy, so that a rebuild meanwhile (which
# replaces or removes build/nfqtrace for a while) changes no benchmark's
# binary. A copy taken in the middle of a link does not run: taken again.
RUN_BIN=$(mktemp -d /tmp/nfqt-bench-bin.XXXXXX)
trap 'rm -rf "$RUN_BIN"' EXIT
chmod 755 "$RUN_BIN"
for try in 1 2 3 4 5 6; do
  cp "$NFQ" "$RUN_BIN/nfqtrace" 2>/dev/null && version=$("$RUN_BIN/nfqtrace" --version 2>/dev/null | head -n1) &&
    [[ -n $version ]] && break
  version=""
  (( try < 6 )) && { echo "(could not copy or run '$NFQ', being rebuilt? again in 10 s)" >&2; sleep 10; }
done
[[ -n $version ]] || { echo "ERROR: '$NFQ' does not run ($NFQ --version)" >&2; exit 1; }
BEFORE_ARGS=() before_line=""
if [[ -n $BEFORE ]]; then
  cp "$BEFORE" "$RUN_BIN/nfqtrace-before" && bversion=$("$RUN_BIN/nfqtrace-before" --version 2>/dev/null | head -n1)
  [[ -n ${bversion:-} ]] || { echo "ERROR: '$BEFORE' (--before) does not run" >&2; exit 1; }
  BEFORE_ARGS=(--before="$RUN_BIN/nfqtrace-before")
  bsrc=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$(dirname "$BEFORE")/CMakeCache.txt" 2>/dev/null)
  bcommit=$(git -C "${bsrc:-/nonexistent}" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
  before_line="- earlier binary (--before, compared in throughput, latency, time_to_path): $BEFORE ($bversion, $(sha256sum "$RUN_BIN/nfqtrace-before" | cut -c1-12)), built from ${bsrc:-unknown} (commit: $bcommit)"
fi
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
  echo "- binary: $NFQ ($version, $(sha256sum "$RUN_BIN/nfqtrace" | cut -c1-12)), built from $src (commit: $commit)"
  [[ -z $before_line ]] || echo "$before_line"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$OUT/summary.md"

# tagged_pids TAG: the processes whose environment holds NFQT_BENCH_RUN=TAG.
tagged_pids() { grep -lzxF "NFQT_BENCH_RUN=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }

# leftovers NAME PID TAG: what the benchmark NAME (pid PID) left behind,
# one line each, after removing it: its namespaces (nfqt-NAME-PID-*, and the
# processes in them) and its processes (every process it started carries
# NFQT_BENCH_RUN=TAG in its environment), killed by their PID.
leftovers() {
  local name=$1 pid=$2 tag=$3 ns p pids
  for ns in $(ip netns list 2>/dev/null | awk -v pre="nfqt-$name-$pid-" 'index($1, pre) == 1 { print $1 }'); do
    echo "namespace $ns"
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns delete "$ns" 2>/dev/null
  done
  mapfile -t pids < <(tagged_pids "$tag")
  (( ${#pids[@]} )) || return 0
  for p in "${pids[@]}"; do
    echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
    kill -TERM "$p" 2>/dev/null
  done
  sleep 0.5
  mapfile -t pids < <(tagged_pids "$tag")
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  return 0
}

failed=() start_all=$(date +%s) child=""
# SIGTERM to run_all reaches the benchmark running (it cleans up and exits).
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 143' TERM
for name in "${PICKED[@]}"; do
  log="$OUT/logs/$name.log" start=$(date +%s) tag="$name-$$-$RANDOM$RANDOM"
  rm -f "$OUT/$name.md"   # a table from an earlier run must not pass for this one's
  # In the background to know its pid (its namespaces' names hold it), with
  # SIGINT and SIGQUIT back to their defaults (a script's background job
  # starts with them ignored, and Ctrl-C must reach it).
  NFQT_BENCH_RUN=$tag env --default-signal=INT,QUIT bash "$DIR/bench_$name.sh" "$RUN_BIN/nfqtrace" "${QUICK[@]}" "${BEFORE_ARGS[@]}" >"$log" 2>&1 &
  child=$!
  rc=0
  wait "$child" || rc=$?
  left=$(leftovers "$name" "$child" "$tag")
  child=""
  secs=$(( $(date +%s) - start ))
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [[ -n $left ]]; then
    printf 'FAIL   %-14s %4d s  (left behind, now removed:)\n' "$name" "$secs"
    while IFS= read -r line; do printf '         %s\n' "$line"; done <<<"$left"
    failed+=("$name")
    { echo "### $name: FAILED, left behind: $(tr '\n' ';' <<<"$left")"; echo; } >>"$OUT/summary.md"
  elif (( rc == 0 )) && [[ -s $OUT/$name.md ]]; then
    printf 'ok     %-14s %4d s  (load average at its end: %s)\n' "$name" "$secs" "$load"
    { cat "$OUT/$name.md"; echo; echo "($name: $secs s; load average at its end: $load)"; echo; } >>"$OUT/summary.md"
    # Not a failure (the numbers are not checked), but worth a look: a cell
    # the script could not fill, e.g. a line of nfqtrace's it could not parse.
    grep -q '\bnan\b' "$OUT/$name.md" && printf '       %-14s (note: its table has cells it could not measure: nan)\n' "$name"
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
# A closing line in the form test runners use: a benchmark "passed" when it
# ran and cleaned up, whatever its numbers.
printf 'benchmarks: %d passed, %d failed\n' $(( ${#PICKED[@]} - ${#failed[@]} )) "${#failed[@]}"
(( ${#failed[@]} == 0 ))
