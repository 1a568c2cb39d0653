#!/usr/bin/env bash
# Time to path: a paced flow (bench/tools/pingpong.cpp pace: 100 bytes every
# 10 ms, i.e. 100 packets/s) from the client to the server across 3 routers,
# traced by nfqtrace on the client (--dport, dup, --count 1, JSON). Time to
# path = the trace's "end" minus the wall-clock time of the flow's first
# data write (the trace's "start" is its first non-SYN packet: the
# handshake's last ACK, just before). Compared with the issue's bounds:
#   all routers answer:  3 path RTTs + 50 ms
#   r2 silent:           --timeout + 3 path RTTs + 50 ms
# Three cases: all routers answer on plain veth links (RTT ~0.03 ms); the
# same with r3 holding every forwarded packet 10 ms (tests/netns delay line,
# RTT ~20 ms); r2 silent and r3 delaying. The path RTT is measured before
# each case (ping, or a TCP ping-pong when ping is not installed). ICMP
# rate limits are off on the routers.
# Usage: sudo bash bench/bench_time_to_path.sh [/path/to/nfqtrace] [--quick]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init time_to_path "$@"

REPS=$(pick 2 10)
PORT=7001
TIMEOUT=1            # nfqtrace --timeout (its default)
DELAY_MS=10          # r3 holds forwarded packets this long (each way)

bench_chain3
pingpong_server "$SRV" $PORT

CSV="$BENCH_OUT/time_to_path.csv"
echo "case,rep,rtt_ms,bound_ms,time_to_path_ms,end_minus_start_ms,first_write_after_start_ms,reason,hops,probes_sent" >"$CSV"

# one_trace CASE REP RTT_MS BOUND_MS PACE_S
one_trace() {
  local case=$1 rep=$2 rtt=$3 bound=$4 pace_s=$5 name="nfq-$1-$2" rc=0 rec fw start end
  nfq_start "$name" "$CLI" --dport $PORT --mode dup --count 1 --format json --timeout $TIMEOUT
  bg_start "pace-$case-$rep" ip netns exec "$CLI" "$PINGPONG" pace "$DST" $PORT 10 100 "$pace_s"
  nfqtrace_wait "$name" $((pace_s + 10)) || rc=$?
  bg_wait "pace-$case-$rep" $((pace_s + 10)) || die "the paced flow failed: $(cat "${BG_ERR[pace-$case-$rep]}")"
  (( rc == 0 )) || { show_file "nfqtrace stderr" "${BG_ERR[$name]}"; die "nfqtrace --count 1 exited with $rc"; }
  rec=$(trace_records "${BG_OUT[$name]}" | head -n1)
  [[ -n $rec ]] || die "no trace record"
  fw=$(kv "${BG_OUT[pace-$case-$rep]}" first_write_ns)
  start=$(rfc3339_ns "$(jq -r .start <<<"$rec")") end=$(rfc3339_ns "$(jq -r .end <<<"$rec")")
  echo "$case,$rep,$rtt,$bound,$(calc "($end - $fw) / 1e6"),$(calc "($end - $start) / 1e6"),$(calc "($fw - $start) / 1e6"),$(jq -r .reason <<<"$rec"),$(jq -r '.hops | length' <<<"$rec"),$(jq -r .probes_sent <<<"$rec")" >>"$CSV"
  log "$case rep $rep: time to path $(calc "($end - $fw) / 1e6" %.1f) ms (bound $bound ms), reason $(jq -r .reason <<<"$rec"), hops: $(trace_hops "$rec" | tr '\n' ' ')"
}

# measure CASE PACE_S EXTRA_MS: REPS traces, the path RTT measured first.
measure() {
  local case=$1 pace_s=$2 extra_ms=$3 rep rtt bound
  read -r rtt RTT_METHOD <<<"$(path_rtt_ms "$CLI" "$DST")"
  bound=$(calc "$extra_ms + 3 * $rtt + 50")
  log "$case: path RTT $rtt ms ($RTT_METHOD), bound $bound ms"
  for ((rep = 1; rep <= REPS; rep++)); do
    one_trace "$case" "$rep" "$rtt" "$bound" "$pace_s"
  done
}

section "all routers answer: $REPS traces"
measure answering 1 0
section "all routers answer, r3 delays every forwarded packet $DELAY_MS ms: $REPS traces"
net_delay "$(net_router 3)" $DELAY_MS
measure answering_delay 1 0
section "r2 silent (no time-exceeded), r3 delays $DELAY_MS ms: $REPS traces, --timeout $TIMEOUT"
net_silence "$(net_router 2)"
measure silent_hop $((TIMEOUT + 1)) $((TIMEOUT * 1000))

col() { csv_col "$CSV" 1 "$1" "$2"; }
results_open
results_line "A flow writing 100 bytes every 10 ms, client → 3 routers → server (veth), traced with --count 1 --timeout $TIMEOUT (dup); $REPS traces per case. Time to path = trace end − first data write. Path RTT by $RTT_METHOD (median of 30 round trips), measured before each case. Medians (range)."
results_line ""
results_line "| case | path RTT (ms) | bound (ms) | time to path (ms) | max (ms) | ratio to bound | within bound | reason reached |"
results_line "|---|---|---|---|---|---|---|---|"
for case in answering answering_delay silent_hop; do
  rtt=$(col "$case" 3 | median) bound=$(col "$case" 4 | median) t=$(col "$case" 5 | median)
  within=$(awk -F, -v c="$case" 'NR > 1 && $1 == c { n++; if ($5 <= $4) k++ } END { printf "%d/%d", k, n }' "$CSV")
  reached=$(awk -F, -v c="$case" 'NR > 1 && $1 == c { n++; if ($8 == "reached") k++ } END { printf "%d/%d", k, n }' "$CSV")
  label="all routers answer (bound 3 RTT + 50 ms)"
  [[ $case == answering_delay ]] && label="all answer, r3 delays $DELAY_MS ms each way (bound 3 RTT + 50 ms)"
  [[ $case == silent_hop ]] && label="r2 silent, r3 delays $DELAY_MS ms (bound --timeout $TIMEOUT s + 3 RTT + 50 ms)"
  results_line "| $label | $(printf '%.3f' "$rtt") | $(printf '%.1f' "$bound") | $(printf '%.1f' "$t") ($(col "$case" 5 | awk '{ printf "%.1f\n", $1 }' | minmax)) | $(col "$case" 5 | sort -g | tail -n1 | awk '{ printf "%.1f", $1 }') | $(ratio "$t" "$bound") | $within | $reached |"
done
results_line ""
results_line "Trace start to first data write: $(col answering 7 | median | awk '{ printf "%.2f", $1 }') ms (median; the trace starts at the handshake's last ACK). Raw data: $(basename "$CSV")."
results_print
