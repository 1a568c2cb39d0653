#!/usr/bin/env bash
# Harmlessness: the TCP counters of both ends (nstat, in the client's and the
# server's namespace) over one iperf3 transfer at a fixed rate (so that the
# untraced transfer itself loses nothing), untraced (baseline), traced by
# nfqtrace on the client in dup mode and in mangle mode, both with
# --repeat 1 (a trace round every second, so the transfer is probed several
# times). Deltas per run, medians over the runs, interleaved.
# What to expect: dup probes are extra copies of bytes already sent, so the
# server sees duplicates and answers with D-SACKs (TcpExtTCPDSACKOldSent at
# the server, TcpExtTCPDSACKRecv at the client) but nothing is lost and
# nothing retransmitted; mangle lowers the TTL of originals, which then die
# on the way and must be retransmitted (TcpRetransSegs at the client).
# Usage: sudo bash bench/bench_harm.sh [/path/to/nfqtrace] [--quick]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init harm "$@"

REPS=$(pick 1 5)
SECS=$(pick 2 5)
RATE=$(pick 200M 500M)
PORT=5201
COUNTERS=(TcpRetransSegs TcpExtTCPLostRetransmit TcpExtTCPLossProbes TcpExtTCPSpuriousRTOs
          TcpExtTCPDSACKUndo TcpExtTCPDSACKRecv TcpExtTCPDSACKOldSent TcpExtTCPSACKReorder)

bench_chain3
iperf_server "$SRV" $PORT

CSV="$BENCH_OUT/harm.csv"
RUNS="$BENCH_OUT/harm_runs.csv"
echo "rep,condition,end,counter,delta" >"$CSV"
echo "rep,condition,gbps,iperf_retransmits,trace_rounds,probes_sent" >"$RUNS"

run_one() {
  local rep=$1 cond=$2 name="nfq-$1-$2" res gbps retr rounds=0 probes=0 end c
  [[ $cond == base ]] || nfq_start "$name" "$CLI" --dport $PORT --mode "$cond" --format json --repeat 1
  nstat_snapshot "$CLI" "$NET_TMP/client.before"
  nstat_snapshot "$SRV" "$NET_TMP/server.before"
  res=$(iperf_run "$CLI" "$DST" "$SECS" 0 "$NET_TMP/iperf-$rep-$cond.json" -b "$RATE")
  read -r gbps retr <<<"$res"
  sleep 0.3   # the last ACKs and D-SACKs
  nstat_snapshot "$CLI" "$NET_TMP/client.after"
  nstat_snapshot "$SRV" "$NET_TMP/server.after"
  if [[ $cond != base ]]; then
    nfq_stop "$name"
    rounds=$(trace_records "${BG_OUT[$name]}" | wc -l)
    probes=$(nfq_summary "$name" "probes sent")
  fi
  for end in client server; do
    for c in "${COUNTERS[@]}"; do
      echo "$rep,$cond,$end,$c,$(nstat_delta "$NET_TMP/$end.before" "$NET_TMP/$end.after" "$c")" >>"$CSV"
    done
  done
  echo "$rep,$cond,$gbps,$retr,$rounds,$probes" >>"$RUNS"
  log "rep $rep $cond: $(printf '%.3f' "$gbps") Gbit/s, trace rounds $rounds, probes $probes; client retrans $(nstat_delta "$NET_TMP/client.before" "$NET_TMP/client.after" TcpRetransSegs), server D-SACKs sent $(nstat_delta "$NET_TMP/server.before" "$NET_TMP/server.after" TcpExtTCPDSACKOldSent)"
}

section "runs: $REPS repetitions x (base, dup, mangle), iperf3 -b $RATE -t $SECS"
conds=(base dup mangle)
for ((rep = 1; rep <= REPS; rep++)); do
  for ((k = 0; k < 3; k++)); do run_one "$rep" "${conds[(rep + k) % 3]}"; done
done

# cell CONDITION END COUNTER: median delta over the runs
cell() { awk -F, -v c="$1" -v e="$2" -v k="$3" 'NR > 1 && $2 == c && $3 == e && $4 == k && $5 != "nan" { print $5 }' "$CSV" | median; }
run_col() { awk -F, -v c="$1" -v k="$2" 'NR > 1 && $2 == c { print $k }' "$RUNS" | median; }
results_open
results_line "iperf3 -b $RATE -t $SECS, client → 3 routers → server (veth); nfqtrace on the client, --repeat 1; $REPS runs per condition, interleaved. Counter increase per run at each end (nstat), median over runs."
results_line ""
results_line "| counter | baseline client | baseline server | dup client | dup server | mangle client | mangle server |"
results_line "|---|---|---|---|---|---|---|"
for c in "${COUNTERS[@]}"; do
  results_line "| $c | $(cell base client "$c") | $(cell base server "$c") | $(cell dup client "$c") | $(cell dup server "$c") | $(cell mangle client "$c") | $(cell mangle server "$c") |"
done
results_line "| (trace rounds per run) | — | | $(run_col dup 5) | | $(run_col mangle 5) | |"
results_line "| (probes sent per run) | — | | $(run_col dup 6) | | $(run_col mangle 6) | |"
results_line "| (Gbit/s) | $(printf '%.3f' "$(run_col base 3)") | | $(printf '%.3f' "$(run_col dup 3)") | | $(printf '%.3f' "$(run_col mangle 3)") | |"
b=$(cell base client TcpRetransSegs) d=$(cell dup client TcpRetransSegs) m=$(cell mangle client TcpRetransSegs)
results_line ""
results_line "Retransmissions caused (client TcpRetransSegs, traced − baseline): dup $(calc "$d - $b" %+.0f), mangle $(calc "$m - $b" %+.0f) per run = $(ratio "$(calc "$m - $b")" "$(run_col mangle 5)" %.1f) per mangle trace round. Raw data: $(basename "$CSV"), $(basename "$RUNS")."
results_print
