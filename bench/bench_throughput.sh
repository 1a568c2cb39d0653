#!/usr/bin/env bash
# Throughput: one iperf3 TCP stream client → r1 → r2 → r3 → server, untraced
# (baseline) and traced by nfqtrace on the client (--dport 5201, dup mode):
#   ended    — nfqtrace runs, the flow's trace has ended (the first second,
#              in which the trace runs, is left out with iperf3 -O 1; the
#              script checks every trace ended within it)
#   repeat1  — nfqtrace --repeat 1: the flow is traced again every second
#   ctbase   — untraced, but with a rule like nfqtrace's bypass rule (a
#              conntrack-mark match), so the namespace tracks connections:
#              what the bypass costs apart from user space
#   queued   — like ended, but every packet of the flow still goes through
#              the queue (nfqtrace --no-rules fed by its own rule without
#              the conntrack-mark bypass: the per-packet cost of user space,
#              as before the bypass, and during every trace round)
# Conditions interleaved, order rotated each repetition; medians, and the
# median of the ratios to the baseline run of the same repetition.
# Issue 4 targets: ended >= 0.97 x baseline, repeat1 >= 0.90 x baseline.
# Usage: sudo bash bench/bench_throughput.sh [/path/to/nfqtrace] [--quick]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init throughput "$@"

REPS=$(pick 2 7)
SECS=$(pick 1 4)     # measured seconds per run
OMIT=1               # seconds left out at the start of each run
PORT=5201

bench_chain3
iperf_server "$SRV" $PORT

CSV="$BENCH_OUT/throughput.csv"
echo "rep,condition,gbps,retransmits,nfq_cpu_s,nfq_cpu_pct,packets_seen,probes_sent,traces,rule_packets,last_first_trace_end_s" >"$CSV"

# run_one REP CONDITION: one iperf3 run, a CSV line.
run_one() {
  local rep=$1 cond=$2 name="nfq-$1-$2" out="$NET_TMP/iperf-$1-$2.json" res gbps retr
  local cpu0=nan cpu1=nan cpu=nan pct=nan seen=nan probes=nan traces=nan rulep=nan endmax=nan t0
  cond_start "$name" "$cond" $PORT
  cond_traced "$cond" && cpu0=$(cpu_ns "$NFQ_PID")
  t0=$(date +%s%N)
  res=$(iperf_run "$CLI" "$DST" "$SECS" "$OMIT" "$out")
  read -r gbps retr <<<"$res"
  if cond_traced "$cond"; then
    cpu1=$(cpu_ns "$NFQ_PID")
    rulep=$(queue_rule_packets "$CLI")
  fi
  cond_stop "$name" "$cond"
  if cond_traced "$cond"; then
    cpu=$(calc "($cpu1 - $cpu0) / 1e9")
    pct=$(calc "100 * $cpu / ($SECS + $OMIT)" %.1f)
    seen=$(nfq_summary "$name" "packets seen")
    probes=$(nfq_summary "$name" "probes sent")
    traces=$(trace_records "${BG_OUT[$name]}" | wc -l)
    # The first trace of every connection (iperf3's control and data
    # connections) must have ended within the omitted first second. (A
    # connection's last packets after its FIN can start a new trace that
    # nfqtrace's exit then reports as stopped.)
    endmax=$(trace_records "${BG_OUT[$name]}" | jq -s -r 'group_by(.flow.sport)[] | min_by(.start) | .end' |
      while read -r e; do echo $(( $(rfc3339_ns "$e") - t0 )); done | sort -n | tail -n1)
    endmax=$(calc "${endmax:-nan} / 1e9")
  fi
  echo "$rep,$cond,$gbps,$retr,$cpu,$pct,$seen,$probes,$traces,$rulep,$endmax" >>"$CSV"
  log "rep $rep $cond: $(printf '%.2f' "$gbps") Gbit/s, retrans $retr, nfqtrace CPU $pct%, packets seen $seen (rule matched $rulep), traces $traces, first traces ended by ${endmax} s"
}

CONDS=(base ctbase ended repeat1 queued)
section "runs: $REPS repetitions x (${CONDS[*]}), ${SECS} s each after ${OMIT} s omitted"
for ((rep = 1; rep <= REPS; rep++)); do
  for ((k = 0; k < ${#CONDS[@]}; k++)); do
    run_one "$rep" "${CONDS[(rep + k) % ${#CONDS[@]}]}"
  done
done

col() { csv_col "$CSV" 2 "$1" "$2"; }  # col CONDITION COLUMN_NUMBER: the values of that column
# paired CONDITION: the ratio to the baseline of the same repetition, per repetition
paired() {
  awk -F, -v c="$1" 'NR > 1 && $2 == "base" { b[$1] = $3 } NR > 1 && $2 == c { t[$1] = $3 }
    END { for (r in t) if (b[r] > 0) printf "%.3f\n", t[r] / b[r] }' "$CSV"
}
results_open
base=$(col base 3 | median)
results_line "iperf3, 1 TCP stream, client → 3 routers → server (veth), $REPS runs per condition, ${SECS} s each after ${OMIT} s omitted, conditions interleaved. Gbit/s: median (range); ratio: of the medians, and the median (range) of each repetition's traced / baseline."
results_line ""
results_line "| condition | Gbit/s | ratio to baseline | paired ratio | target | nfqtrace CPU (% of one core) | packets queued per run | sender retransmits |"
results_line "|---|---|---|---|---|---|---|---|"
for cond in "${CONDS[@]}"; do
  g=$(col "$cond" 3 | median)
  target="" pct="—" pk="—" pr="—"
  [[ $cond == ended ]] && target="≥ 0.97"
  [[ $cond == repeat1 ]] && target="≥ 0.90"
  if [[ $cond != base ]]; then
    pr="$(paired "$cond" | median) ($(paired "$cond" | minmax))"
  fi
  if cond_traced "$cond"; then
    pct=$(col "$cond" 6 | median)
    pk=$(col "$cond" 7 | median | awk '{ printf "%.0f", $1 }')
  fi
  case $cond in
    base) label="baseline (untraced)" ;;
    ctbase) label="untraced, conntrack on (nfqtrace's bypass match, no queue)" ;;
    ended) label="traced, trace ended (dup)" ;;
    repeat1) label="traced, --repeat 1 (dup)" ;;
    queued) label="traced, trace ended, every packet queued (no bypass)" ;;
  esac
  results_line "| $label | $(printf '%.2f' "$g") ($(col "$cond" 3 | awk '{ printf "%.2f\n", $1 }' | minmax)) | $(ratio "$g" "$base") | $pr | $target | $pct | $pk | $(col "$cond" 4 | median) |"
done
late=$(awk -F, 'NR > 1 && $11 != "nan" && $11 > '"$OMIT"' { n++ } END { print n + 0 }' "$CSV")
results_line ""
results_line "Runs in which a first trace ended after the omitted ${OMIT} s (would bias 'ended'): $late. Raw data: $(basename "$CSV")."
results_print
