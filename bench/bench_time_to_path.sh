#!/usr/bin/env bash
# Time to path: a paced flow (bench/tools/pingpong.cpp pace: 100 bytes every
# 10 ms, i.e. 100 packets/s) from the client to the server across 3 routers,
# traced by nfqtrace on the client (--dport, dup, --count 1, JSON). Time to
# path = the trace's "end" minus the wall-clock time of the flow's first
# data write (the trace's "start" is its first non-SYN packet: the
# handshake's last ACK, just before). Compared with the bounds of issues 4
# and 13:
#   all routers answer:                  3 path RTTs + 50 ms
#   r2 silent, r3 delays 10 ms:          --timeout + 3 path RTTs + 50 ms (issue 4)
#   r2 silent (sub-ms RTT):              3 path RTTs + 50 ms (issue 13, item 1)
#   r2 silent, r3 delays 15 ms:          3 path RTTs + 50 ms (issue 13, item 1)
# Five cases, in this order: all routers answer on plain veth links (RTT
# ~0.03 ms); the same with r3 holding every forwarded packet 10 ms (tests/netns
# delay line, RTT ~20 ms); r2 silent and r3 delaying 10 ms; r2 silent and r3
# delaying 15 ms (RTT ~30 ms); r2 silent on plain links. The path RTT is
# measured before each case (ping, or a TCP ping-pong when ping is not
# installed). ICMP rate limits are off on the routers. With --before=PATH
# every trace is also taken with that earlier binary, alternating with the
# current one; "silent":"inferred" (issue 13) is counted per trace.
# Usage: sudo bash bench/bench_time_to_path.sh [/path/to/nfqtrace] [--quick] [--before=PATH]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init time_to_path "$@"

REPS=$(pick 2 10)
PORT=7001
TIMEOUT=1            # nfqtrace --timeout (its default)
DELAY_MS=10          # r3 holds forwarded packets this long (each way)
DELAY2_MS=15         # ... in the second delayed silent case
BINS=(after)
[[ -n $NFQ_BEFORE ]] && BINS+=(before)

bench_chain3
pingpong_server "$SRV" $PORT

CSV="$BENCH_OUT/time_to_path.csv"
echo "case,rep,rtt_ms,bound_ms,time_to_path_ms,end_minus_start_ms,first_write_after_start_ms,reason,hops,probes_sent,binary,silent_inferred,late_hops" >"$CSV"

# one_trace CASE REP RTT_MS BOUND_MS PACE_S BIN(after|before)
one_trace() {
  local case=$1 rep=$2 rtt=$3 bound=$4 pace_s=$5 bin=$6 name="nfq-$1-$2-$6" rc=0 rec fw start end
  local NFQ=$NFQ
  [[ $bin == before ]] && NFQ=$NFQ_BEFORE
  nfq_start "$name" "$CLI" --dport $PORT --mode dup --count 1 --format json --timeout $TIMEOUT
  bg_start "pace-$case-$rep-$bin" ip netns exec "$CLI" "$PINGPONG" pace "$DST" $PORT 10 100 "$pace_s"
  nfqtrace_wait "$name" $((pace_s + 10)) || rc=$?
  bg_wait "pace-$case-$rep-$bin" $((pace_s + 10)) || die "the paced flow failed: $(cat "${BG_ERR[pace-$case-$rep-$bin]}")"
  (( rc == 0 )) || { show_file "nfqtrace stderr" "${BG_ERR[$name]}"; die "nfqtrace --count 1 exited with $rc"; }
  rec=$(trace_records "${BG_OUT[$name]}" | head -n1)
  [[ -n $rec ]] || die "no trace record"
  fw=$(kv "${BG_OUT[pace-$case-$rep-$bin]}" first_write_ns)
  start=$(rfc3339_ns "$(jq -r .start <<<"$rec")") end=$(rfc3339_ns "$(jq -r .end <<<"$rec")")
  echo "$case,$rep,$rtt,$bound,$(calc "($end - $fw) / 1e6"),$(calc "($end - $start) / 1e6"),$(calc "($fw - $start) / 1e6"),$(jq -r .reason <<<"$rec"),$(jq -r '.hops | length' <<<"$rec"),$(jq -r .probes_sent <<<"$rec"),$bin,$(inferred_silent "${BG_OUT[$name]}"),$(late_hops "${BG_OUT[$name]}")" >>"$CSV"
  log "$case rep $rep ($bin): time to path $(calc "($end - $fw) / 1e6" %.1f) ms (bound $bound ms), reason $(jq -r .reason <<<"$rec"), hops: $(trace_hops "$rec" | tr '\n' ' ')"
}

# measure CASE PACE_S EXTRA_MS: REPS traces (per binary, alternating), the path RTT measured first.
measure() {
  local case=$1 pace_s=$2 extra_ms=$3 rep rtt bound bin
  read -r rtt RTT_METHOD <<<"$(path_rtt_ms "$CLI" "$DST")"
  bound=$(calc "$extra_ms + 3 * $rtt + 50")
  log "$case: path RTT $rtt ms ($RTT_METHOD), bound $bound ms"
  for ((rep = 1; rep <= REPS; rep++)); do
    for bin in "${BINS[@]}"; do
      one_trace "$case" "$rep" "$rtt" "$bound" "$pace_s" "$bin"
    done
  done
}

# undelay NS: ends net_delay's delay line on NS (its rules, then itself).
undelay() {
  local ns=$1
  ns_exec "$ns" iptables -t mangle -D FORWARD -j NFQUEUE --queue-num 0
  ns_exec "$ns" ip6tables -t mangle -D FORWARD -j NFQUEUE --queue-num 0
  bg_stop "delayq-${ns#"$NET_PREFIX"}"
}

# A silent case's flow lasts --timeout + 1 s: long enough for a binary that
# waits the timeout out.
section "all routers answer: $REPS traces"
measure answering 1 0
section "all routers answer, r3 delays every forwarded packet $DELAY_MS ms: $REPS traces"
net_delay "$(net_router 3)" $DELAY_MS
measure answering_delay 1 0
section "r2 silent (no time-exceeded), r3 delays $DELAY_MS ms: $REPS traces, --timeout $TIMEOUT"
net_silence "$(net_router 2)"
measure silent_hop $((TIMEOUT + 1)) $((TIMEOUT * 1000))
section "r2 silent, r3 delays $DELAY2_MS ms: $REPS traces, bound 3 RTT + 50 ms (issue 13)"
undelay "$(net_router 3)"
net_delay "$(net_router 3)" $DELAY2_MS
measure silent_delay15 $((TIMEOUT + 1)) 0
section "r2 silent, no delay: $REPS traces, bound 3 RTT + 50 ms (issue 13)"
undelay "$(net_router 3)"
measure silent_fast $((TIMEOUT + 1)) 0

# col CASE BIN COLUMN: that column's values for the case and binary.
col() { awk -F, -v c="$1" -v b="$2" -v k="$3" 'NR > 1 && $1 == c && $11 == b && $k != "nan" { print $k }' "$CSV"; }
results_open
results_line "A flow writing 100 bytes every 10 ms, client → 3 routers → server (veth), traced with --count 1 --timeout $TIMEOUT (dup); $REPS traces per case$( [[ -n $NFQ_BEFORE ]] && echo " and binary, the two binaries alternating (after: $(basename "$NFQ"), the binary measured; before: $NFQ_BEFORE)"). Time to path = trace end − first data write. Path RTT by $RTT_METHOD (median of 30 round trips), measured before each case. Medians (range). Inferred silent: traces with a hop marked \"silent\":\"inferred\" (issue 13); late: hop lines marked \"late\":true."
results_line ""
results_line "| case | binary | path RTT (ms) | bound (ms) | time to path (ms) | max (ms) | ratio to bound | within bound | reason reached | inferred silent | late hop lines |"
results_line "|---|---|---|---|---|---|---|---|---|---|---|"
for case in answering answering_delay silent_hop silent_delay15 silent_fast; do
  for bin in "${BINS[@]}"; do
    rtt=$(col "$case" "$bin" 3 | median) bound=$(col "$case" "$bin" 4 | median) t=$(col "$case" "$bin" 5 | median)
    within=$(awk -F, -v c="$case" -v b="$bin" 'NR > 1 && $1 == c && $11 == b { n++; if ($5 <= $4) k++ } END { printf "%d/%d", k, n }' "$CSV")
    reached=$(awk -F, -v c="$case" -v b="$bin" 'NR > 1 && $1 == c && $11 == b { n++; if ($8 == "reached") k++ } END { printf "%d/%d", k, n }' "$CSV")
    inferred=$(awk -F, -v c="$case" -v b="$bin" 'NR > 1 && $1 == c && $11 == b { n++; if ($12 > 0) k++ } END { printf "%d/%d", k, n }' "$CSV")
    late=$(col "$case" "$bin" 13 | awk '{ s += $1 } END { print s + 0 }')
    case $case in
      answering) label="all routers answer (bound 3 RTT + 50 ms)" ;;
      answering_delay) label="all answer, r3 delays $DELAY_MS ms each way (bound 3 RTT + 50 ms)" ;;
      silent_hop) label="r2 silent, r3 delays $DELAY_MS ms (bound --timeout $TIMEOUT s + 3 RTT + 50 ms)" ;;
      silent_delay15) label="r2 silent, r3 delays $DELAY2_MS ms each way (bound 3 RTT + 50 ms)" ;;
      silent_fast) label="r2 silent, plain links (bound 3 RTT + 50 ms)" ;;
    esac
    results_line "| $label | $bin | $(printf '%.3f' "$rtt") | $(printf '%.1f' "$bound") | $(printf '%.1f' "$t") ($(col "$case" "$bin" 5 | awk '{ printf "%.1f\n", $1 }' | minmax)) | $(col "$case" "$bin" 5 | sort -g | tail -n1 | awk '{ printf "%.1f", $1 }') | $(ratio "$t" "$bound") | $within | $reached | $inferred | $late |"
  done
done
results_line ""
results_line "Trace start to first data write: $(col answering after 7 | median | awk '{ printf "%.2f", $1 }') ms (median; the trace starts at the handshake's last ACK). Raw data: $(basename "$CSV")."
results_print
