#!/usr/bin/env bash
# Latency: TCP request/response ping-pong (bench/tools/pingpong.cpp: 64-byte
# request, 64-byte echo, 5000 untimed round trips, then N timed ones on the
# same connection, TCP_NODELAY) from
# the client to the server across 3 routers: untraced (baseline); untraced
# with conntrack on (a rule like nfqtrace's bypass rule, no queue); traced by
# nfqtrace on the client (--dport, dup mode), its trace ended during the
# untimed round trips; with --repeat 1 (runs of 100000 round trips last
# 2-4 s: several rounds); and with every packet queued (nfqtrace --no-rules
# fed by its rule without the conntrack-mark bypass: the cost of the trip
# through user space, paid by every packet of a flow while it is traced).
# Interleaved, order rotated each repetition; medians of each run's p50 and
# p99.
# Issue 4 targets (--repeat 1): at most +30 µs median, +100 µs p99.
# Issue 13 (item 2): --repeat 1, p99 within 10 µs of untraced.
# --before=PATH: ended and repeat1 also with that earlier binary
# (ended_before, repeat1_before), interleaved with the rest.
# Usage: sudo bash bench/bench_latency.sh [/path/to/nfqtrace] [--quick] [--before=PATH]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init latency "$@"

REPS=$(pick 2 6)
N=$(pick 10000 100000)   # round trips per run (100000: about 3 s, so --repeat 1 runs rounds in it)
WARMUP=5000             # untimed round trips first: the flow's first trace (tens of ms) is over
PORT=7001

bench_chain3
pingpong_server "$SRV" $PORT

CSV="$BENCH_OUT/latency.csv"
echo "rep,condition,p50_us,p90_us,p99_us,p999_us,mean_us,nfq_cpu_s,packets_seen,traces" >"$CSV"

run_one() {
  local rep=$1 cond=$2 out="$NET_TMP/ping-$1-$2.txt" name="nfq-$1-$2" cpu0=nan cpu=nan seen=nan traces=nan
  cond_start "$name" "$cond" $PORT
  cond_traced "$cond" && cpu0=$(cpu_ns "$NFQ_PID")
  ns_exec "$CLI" "$PINGPONG" ping "$DST" $PORT "$N" 64 $WARMUP >"$out" || die "pingpong failed"
  cond_traced "$cond" && cpu=$(calc "($(cpu_ns "$NFQ_PID") - $cpu0) / 1e9")
  cond_stop "$name" "$cond"
  if cond_traced "$cond"; then
    seen=$(nfq_summary "$name" "packets seen")
    traces=$(trace_records "${BG_OUT[$name]}" | wc -l)
  fi
  echo "$rep,$cond,$(kv "$out" p50_us),$(kv "$out" p90_us),$(kv "$out" p99_us),$(kv "$out" p999_us),$(kv "$out" mean_us),$cpu,$seen,$traces" >>"$CSV"
  log "rep $rep $cond: $(cat "$out"); traces $traces"
}

read -r -a CONDS <<<"base ctbase ended repeat1 queued $( [[ -n $NFQ_BEFORE ]] && echo ended_before repeat1_before)"
section "runs: $REPS repetitions x (${CONDS[*]}), $N round trips each"
for ((rep = 1; rep <= REPS; rep++)); do
  for ((k = 0; k < ${#CONDS[@]}; k++)); do run_one "$rep" "${CONDS[(rep + k) % ${#CONDS[@]}]}"; done
done

col() { csv_col "$CSV" 2 "$1" "$2"; }
results_open
b50=$(col base 3 | median) b99=$(col base 5 | median)
results_line "TCP ping-pong, 64-byte request and echo, TCP_NODELAY, client → 3 routers → server (veth), $N timed round trips per run after $WARMUP untimed ones (the connection's first trace), $REPS runs per condition, interleaved; median over runs of each run's percentile (range). Added = traced − baseline."
results_line ""
results_line "| condition | p50 (µs) | p99 (µs) | p99.9 (µs) | added p50 (µs) | added p99 (µs) | target | packets queued per run |"
results_line "|---|---|---|---|---|---|---|---|"
for cond in base ctbase ended ended_before repeat1 repeat1_before queued; do
  [[ " ${CONDS[*]} " == *" $cond "* ]] || continue
  p50=$(col "$cond" 3 | median) p99=$(col "$cond" 5 | median) p999=$(col "$cond" 6 | median)
  a50="—" a99="—" target=""
  if [[ $cond != base ]]; then a50=$(calc "$p50 - $b50" %+.1f) a99=$(calc "$p99 - $b99" %+.1f); fi
  [[ $(cond_base "$cond") == repeat1 ]] && target="≤ +30 p50, ≤ +100 p99 (issue 4); ≤ +10 p99 (issue 13)"
  label="baseline (untraced)"
  [[ $cond == ended ]] && label="traced, trace ended (dup)"
  [[ $cond == repeat1 ]] && label="traced, --repeat 1 (dup)"
  [[ $cond == queued ]] && label="traced, every packet queued (no bypass)"
  [[ $cond == ctbase ]] && label="untraced, conntrack on (bypass match, no queue)"
  [[ $cond == ended_before ]] && label="before: traced, trace ended (dup)"
  [[ $cond == repeat1_before ]] && label="before: traced, --repeat 1 (dup)"
  pk="—"; cond_traced "$cond" && pk=$(col "$cond" 9 | median | awk '{ printf "%.0f", $1 }')
  results_line "| $label | $p50 ($(col "$cond" 3 | minmax)) | $p99 ($(col "$cond" 5 | minmax)) | $p999 | $a50 | $a99 | $target | $pk |"
done
results_line ""
results_line "$( [[ -n $NFQ_BEFORE ]] && echo "\"before:\" rows: the earlier binary $NFQ_BEFORE, the others $(basename "$NFQ"). ")Raw data: $(basename "$CSV")."
results_print
