#!/usr/bin/env bash
# Scale: N concurrent slow TCP connections (bench/tools/manyconn.cpp, one
# epoll process: 32 bytes every 100 ms each, echoed by the server; opened at
# 1000 a second) from the client to the server across 3 routers, untraced
# (baseline) and traced by one nfqtrace on the client (--max-flows N
# --count N, dup; with its default probe pacing, --pps 1000, with
# --pps 0, and with --stop-set 60: every connection goes to the same
# server, so every trace after the first ones is probed only near it and
# takes the hops below over). Reported: every connection up, echo times, all N traces
# reached, time until the last trace ended, probes per trace, nfqtrace's peak RSS (VmHWM),
# CPU time per traced flow (utime + stime / N), and whether the kernel
# queue dropped anything (/proc/net/netfilter/nfnetlink_queue, read from
# nfqtrace's namespace; plus the netlink socket's drop count). N = 2000 (the
# issue's figure), 100 with --quick. ICMP rate limits are off on the routers
# (Linux limits time-exceeded per destination and globally: 1000/s, burst 50).
# Usage: sudo bash bench/bench_scale.sh [/path/to/nfqtrace] [--quick]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init scale "$@"

N=$(pick 100 2000)
REPS=$(pick 1 2)
# seconds the connections stay open once all are (more when traced, paced)
HOLD=$(pick 3 6)
INTERVAL=100
OPEN_RATE=1000
PORT=7002

bench_chain3
manyconn_server "$SRV" $PORT

CSV="$BENCH_OUT/scale.csv"
KEYS=(connected failed lost echo_p50_us echo_p99_us echo_max_us open_s traces reached reasons inferred trace_probes_p50 trace_probes_p90 all_traces_s cpu_s utime_s stime_s cpu_ns hwm_kb
      queue_dropped user_dropped socket_drops max_queue_total packets_seen probes_sent replies_matched flows_waited flows_waited_past passed_untraced nfq_exit
      client_retrans server_retrans)
(IFS=,; echo "n,rep,condition,${KEYS[*]}") >"$CSV"

CONDS=(base traced unpaced stopset)
section "runs: $REPS x (${CONDS[*]}), $N connections, one write per ${INTERVAL} ms"
for ((rep = 1; rep <= REPS; rep++)); do
  for ((k = 0; k < ${#CONDS[@]}; k++)); do
    cond=${CONDS[(rep + k) % ${#CONDS[@]}]} name="$cond-$rep"
    case $cond in
      base) flows_run "$name" "$N" $INTERVAL "$HOLD" $OPEN_RATE $PORT 0 ;;
      # The default probe pacing (--pps 1000, up to 24 probes a flow here)
      # needs up to N x 24 / 1000 s: the connections stay open that long,
      # and more (nfqtrace exits, and they end, once N traces have ended).
      traced) flows_run "$name" "$N" $INTERVAL $(( HOLD + (N * 30 + 999) / 1000 )) $OPEN_RATE $PORT 1 ;;
      unpaced) flows_run "$name" "$N" $INTERVAL "$HOLD" $OPEN_RATE $PORT 1 --pps 0 ;;
      # Paced too; the traces after the first ones need a few probes each.
      stopset) flows_run "$name" "$N" $INTERVAL $(( HOLD + (N * 30 + 999) / 1000 )) $OPEN_RATE $PORT 1 --stop-set 60 ;;
    esac
    line="$N,$rep,$cond"
    for k2 in "${KEYS[@]}"; do line+=",$(result "$name" "$k2")"; done
    echo "$line" >>"$CSV"
    (( $(result "$name" connected) > 0 )) || die "no connection could be opened"
  done
done

col() { awk -F, -v c="$1" -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                                     $3 == c && $h[k] != "nan" { print $h[k] }' "$CSV"; }
results_open
results_line "$N connections at once (manyconn: 32 bytes every ${INTERVAL} ms each, echoed; opened at ${OPEN_RATE}/s), client → 3 routers → server (veth); nfqtrace on the client with --max-flows $N --count $N (dup), with its default probe pacing, without, and with --stop-set 60 (paced). ICMP rate limits off on the routers. $REPS runs per condition, interleaved; medians."
results_line ""
results_line "| condition | connections up | echo p50 / p99 / max (ms) | retransmitted segments client / server | traces ended / reached | last trace ended after (s) | probes per trace, p50 / p90 / mean ² | peak RSS VmHWM (MiB) | CPU user + system (s) | CPU per traced flow (ms) ¹ | queue_dropped / user_dropped / socket drops / passed untraced (queue full) | longest queue (packets) |"
results_line "|---|---|---|---|---|---|---|---|---|---|---|---|"
for cond in "${CONDS[@]}"; do
  up="$(col "$cond" connected | median)/$N"
  echo_ms="$(calc "$(col "$cond" echo_p50_us | median) / 1000" %.2f) / $(calc "$(col "$cond" echo_p99_us | median) / 1000" %.1f) / $(calc "$(col "$cond" echo_max_us | median) / 1000" %.0f)"
  retr="$(col "$cond" client_retrans | median) / $(col "$cond" server_retrans | median)"
  if [[ $cond == base ]]; then
    results_line "| baseline (untraced) | $up | $echo_ms | $retr | — | — | — | — | — | — | — | — |"
  else
    case $cond in
      traced) label="traced (defaults: --pps 1000)" ;;
      unpaced) label="traced, --pps 0 (no probe pacing)" ;;
      stopset) label="traced, --stop-set 60 (--pps 1000)" ;;
    esac
    probes="$(col "$cond" trace_probes_p50 | median) / $(col "$cond" trace_probes_p90 | median) / $(calc "$(col "$cond" probes_sent | median) / $(col "$cond" traces | median)" %.1f)"
    cpu_ms=$(calc "$(col "$cond" cpu_ns | median) / 1e6 / $N" %.2f)
    results_line "| $label | $up | $echo_ms | $retr | $(col "$cond" traces | median) / $(col "$cond" reached | median) | $(col "$cond" all_traces_s | median | awk '{ printf "%.2f", $1 }') | $probes | $(calc "$(col "$cond" hwm_kb | median) / 1024" %.1f) | $(col "$cond" utime_s | median) + $(col "$cond" stime_s | median) | $cpu_ms | $(col "$cond" queue_dropped | median) / $(col "$cond" user_dropped | median) / $(col "$cond" socket_drops | median) / $(col "$cond" passed_untraced | median) | $(col "$cond" max_queue_total | median) |"
  fi
done
results_line ""
results_line "¹ nfqtrace's whole CPU time until it exited (utime + stime, here from /proc/PID/schedstat, which counts in ns where /proc/PID/stat counts 10 ms ticks) / $N. Queue counters from /proc/net/netfilter/nfnetlink_queue in the client namespace, socket drops from /proc/net/netlink; the queue is fail-open: a packet finding it full passes unqueued, which nfqtrace reports at exit (passed untraced); the longest queue shows how close it came (--queue-size 10000)."
results_line "² probes_sent of each trace record (p50, p90 over the traces of a run; median over runs) and the run's probes sent / traces ended (median over runs)."
for cond in traced unpaced stopset; do
  results_line "$cond: trace end reasons (each run): $(col "$cond" reasons | tr '\n' ' '); per run (median): packets seen by nfqtrace $(col "$cond" packets_seen | median), probes sent $(col "$cond" probes_sent | median), replies matched $(col "$cond" replies_matched | median), flows that waited for a place $(col "$cond" flows_waited | median) ($(col "$cond" flows_waited_past | median) of them past the queue), traces that took hops over from an earlier one (--stop-set) $(col "$cond" inferred | median)."
done
results_line "Raw data: $(basename "$CSV")."
results_print
