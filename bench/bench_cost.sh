#!/usr/bin/env bash
# Cost curve: nfqtrace's CPU time and peak memory on the client
#   - as the number of traced flows grows: N slow connections (manyconn,
#     32 bytes a second each, echoed, opened at 2000/s; nfqtrace with its
#     defaults and --max-flows N --count N, dup), N = 10, 100, 1000, 10000
#     (quick: 10, 100), each also run untraced for the connections' echo
#     times. The connections stay open until every trace can have ended:
#     with the default probe pacing (--pps 1000; no more traces at once
#     than it serves, the others wait past the queue; about 24 probes a
#     flow on this 4-hop path) that is about N x 24 / 1000 seconds.
#   - as the packet rate grows: one iperf3 stream, GSO off on the client's
#     link (gso_max_segs 1, so that the queue sees every wire packet), at
#     -b 10M, 50M, 100M, 200M and unlimited (quick: 100M),
#     untraced, traced (its trace ends in the first ms; then the
#     conntrack-mark bypass keeps its packets out of the queue), and traced
#     with every packet queued (--no-rules fed by the same rule without the
#     bypass: the per-packet cost of user space, paid while a flow is traced).
# Prints tables, writes $BENCH_OUT/cost_curve.csv, an ASCII plot, and
# cost_curve.png when gnuplot is installed (optional: skipped, with a
# message, without it).
# Usage: sudo bash bench/bench_cost.sh [/path/to/nfqtrace] [--quick]
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init cost "$@"

read -r -a FLOWS <<<"$(pick "10 100" "10 100 1000 10000")"
read -r -a RATES <<<"$(pick "100M" "10M 50M 100M 200M 0")"   # 0: unlimited
HOLD=$(pick 1 4)     # seconds the connections stay open once all are (untraced)
SECS=$(pick 1 3)     # iperf3 seconds measured, after 1 omitted
FLOW_PORT=7002
IPERF_PORT=5201
# The rate runs turn GSO off on the client's link (gso_max_segs 1): TCP
# then hands every wire packet to the stack (and the queue) on its own;
# with GSO a 64 KiB super-packet is queued once, and the packet rate would
# hardly grow with -b.
IPERF_ARGS=()

bench_chain3
manyconn_server "$SRV" $FLOW_PORT
iperf_server "$SRV" $IPERF_PORT

CSV="$BENCH_OUT/cost_curve.csv"
COLS=(axis x condition gbps packets_seen packets_per_s cpu_s utime_s stime_s cpu_pct cpu_us_per_packet
      cpu_ms_per_flow hwm_kb idle_hwm_kb kb_per_flow echo_p99_ms traces reached all_traces_s probes_per_flow
      queue_drops max_queue flows_waited)
(IFS=,; echo "${COLS[*]}") >"$CSV"
# row KEY=VALUE...: a CSV line, empty where a column is not given
row() {
  local -A v=() kv
  for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
  local line="" c
  for c in "${COLS[@]}"; do line+="${v[$c]:-},"; done
  echo "${line%,}" >>"$CSV"
}

section "flows: ${FLOWS[*]} connections, one write a second each"
for n in "${FLOWS[@]}"; do
  for cond in base traced; do
    name="flows-$n-$cond"
    hold=$HOLD
    [[ $cond == traced ]] && hold=$(( HOLD + (n * 30 + 999) / 1000 ))
    flows_run "$name" "$n" 1000 "$hold" 2000 $FLOW_PORT "$([[ $cond == traced ]] && echo 1 || echo 0)"
    (( $(result "$name" connected) > 0 )) || die "no connection could be opened"
    p99=$(calc "$(result "$name" echo_p99_us) / 1000" %.2f)
    if [[ $cond == base ]]; then
      row axis=flows x="$n" condition=base echo_p99_ms="$p99"
      continue
    fi
    hwm=$(result "$name" hwm_kb) ihwm=$(result "$name" idle_hwm_kb)
    ns=$(result "$name" cpu_ns) idle=$(result "$name" idle_cpu_ns)
    row axis=flows x="$n" condition=traced packets_seen="$(result "$name" packets_seen)" \
      cpu_s="$(result "$name" cpu_s)" utime_s="$(result "$name" utime_s)" stime_s="$(result "$name" stime_s)" \
      cpu_ms_per_flow="$(calc "($ns - $idle) / 1e6 / $n" %.3f)" hwm_kb="$hwm" idle_hwm_kb="$ihwm" \
      kb_per_flow="$(calc "($hwm - $ihwm) / $n" %.2f)" echo_p99_ms="$p99" \
      traces="$(result "$name" traces)" reached="$(result "$name" reached)" all_traces_s="$(result "$name" all_traces_s)" \
      probes_per_flow="$(calc "$(result "$name" probes_sent) / $n" %.1f)" \
      queue_drops="$(calc "$(result "$name" queue_dropped) + $(result "$name" user_dropped) + $(result "$name" socket_drops) + $(result "$name" passed_untraced)" %.0f)" \
      max_queue="$(result "$name" max_queue_total)" flows_waited="$(result "$name" flows_waited_past)"
  done
done

section "packet rate: one iperf3 stream, GSO off, at ${RATES[*]} (0: unlimited), ${SECS} s after 1 s omitted"
gso=$(ns_exec "$CLI" ip -d link show dev fwd | grep -o 'gso_max_segs [0-9]*' | awk '{ print $2 }')
ns_exec "$CLI" ip link set dev fwd gso_max_segs 1
for rate in "${RATES[@]}"; do
  for cond in base traced queued; do
    out="$NET_TMP/iperf-$rate-$cond.json" name="nfq-rate-$rate-$cond"
    if [[ $cond == base ]]; then
      read -r gbps _ <<<"$(iperf_run "$CLI" "$DST" "$SECS" 1 "$out" "${IPERF_ARGS[@]}" -b "$rate")"
      row axis=rate x="$rate" condition=base gbps="$gbps"
      log "rate $rate base: $gbps Gbit/s"
      continue
    fi
    cond_start "$name" "$cond" $IPERF_PORT
    ihwm=$(hwm_kb "$NFQ_PID")
    sampler_start "$name-sampler" "$NFQ_PID" 0.2
    c0=$(cpu_ns "$NFQ_PID") ut0=$(utime_s "$NFQ_PID") st0=$(stime_s "$NFQ_PID")
    p0=$(queue_rule_packets "$CLI")   # packets queued during the run: rule counters
    read -r gbps _ <<<"$(iperf_run "$CLI" "$DST" "$SECS" 1 "$out" "${IPERF_ARGS[@]}" -b "$rate")"
    c1=$(cpu_ns "$NFQ_PID") p1=$(queue_rule_packets "$CLI") hwm=$(hwm_kb "$NFQ_PID")
    ut=$(calc "$(utime_s "$NFQ_PID") - $ut0" %.2f) st=$(calc "$(stime_s "$NFQ_PID") - $st0" %.2f)
    cond_stop "$name" "$cond"
    sampler_wait "$name-sampler"
    cpu=$(calc "($c1 - $c0) / 1e9") pk=$(calc "$p1 - $p0" %.0f)
    row axis=rate x="$rate" condition="$cond" gbps="$gbps" packets_seen="$(nfq_summary "$name" "packets seen")" \
      packets_per_s="$(calc "$pk / ($SECS + 1)" %.0f)" cpu_s="$cpu" utime_s="$ut" stime_s="$st" \
      cpu_pct="$(calc "100 * $cpu / ($SECS + 1)" %.1f)" cpu_us_per_packet="$(ratio "$(calc "1e6 * $cpu")" "$pk" %.2f)" \
      hwm_kb="$hwm" idle_hwm_kb="$ihwm" traces="$(trace_records "${BG_OUT[$name]}" | wc -l)" \
      reached="$(trace_records "${BG_OUT[$name]}" | jq -r 'select(.reached) | 1' | wc -l)" \
      queue_drops="$(calc "$(sampler_get "$name-sampler" queue_dropped) + $(sampler_get "$name-sampler" user_dropped) + $(sampler_get "$name-sampler" socket_drops) + $(nfq_untraced "$name")" %.0f)" \
      max_queue="$(sampler_get "$name-sampler" max_queue_total)"
    log "rate $rate $cond: $gbps Gbit/s, nfqtrace CPU $cpu s over $((SECS + 1)) s, $pk packets queued"
  done
done
ns_exec "$CLI" ip link set dev fwd gso_max_segs "${gso:-65535}"

get() {  # get AXIS X CONDITION COLUMN
  awk -F, -v a="$1" -v x="$2" -v c="$3" -v k="$4" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
    $1 == a && $2 == x && $3 == c { v = $h[k]; print (v == "" ? "nan" : v) }' "$CSV"
}
mib() { calc "$1 / 1024" %.1f; }
results_open
results_line "nfqtrace on the client, dup mode, its defaults (--pps 1000), client → 3 routers → server (veth). One run per point."
results_line ""
results_line "**Flows.** Each flow a connection writing 32 bytes a second, echoed; --max-flows N --count N. CPU and memory until the last trace ended; per flow: minus nfqtrace's start-up CPU and idle memory, CPU from /proc/PID/schedstat (ns)."
results_line ""
results_line "| flows | traces ended / reached | last trace ended after (s) | probes per flow | CPU user + system (s) | CPU per flow (ms) | peak RSS (MiB) | memory per flow (KiB) | echo p99 untraced / traced (ms) | queue drops ¹ | longest queue | flows that waited past the queue ² |"
results_line "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in "${FLOWS[@]}"; do
  results_line "| $n | $(get flows "$n" traced traces) / $(get flows "$n" traced reached) | $(get flows "$n" traced all_traces_s | awk '{ printf "%.1f", $1 }') | $(get flows "$n" traced probes_per_flow) | $(get flows "$n" traced utime_s) + $(get flows "$n" traced stime_s) | $(get flows "$n" traced cpu_ms_per_flow) | $(mib "$(get flows "$n" traced hwm_kb)") | $(get flows "$n" traced kb_per_flow) | $(get flows "$n" base echo_p99_ms) / $(get flows "$n" traced echo_p99_ms) | $(get flows "$n" traced queue_drops) | $(get flows "$n" traced max_queue) | $(get flows "$n" traced flows_waited) |"
done
results_line ""
results_line "**Packet rate.** One iperf3 stream, GSO off on the client's link (gso_max_segs 1: every wire packet is queued on its own; with GSO a 64 KiB super-packet is queued once); CPU and packets over the whole run (${SECS} s measured + 1 s omitted); packets = those the NFQUEUE rule matched. 'traced': nfqtrace as it is (the flow leaves the queue when its trace ends); 'every packet queued': --no-rules fed by its own rule without the conntrack-mark bypass."
results_line ""
results_line "| iperf3 -b | Gbit/s untraced / traced / every packet queued | packets queued per s (traced / every packet) | nfqtrace CPU, % of one core (traced / every packet) | user / system s (every packet) | CPU per queued packet, µs (every packet) | peak RSS MiB (traced / every packet) | queue drops ¹ |"
results_line "|---|---|---|---|---|---|---|---|"
for rate in "${RATES[@]}"; do
  label=$rate; [[ $rate == 0 ]] && label="unlimited"
  g() { printf '%.3f' "$(get rate "$rate" "$1" gbps)"; }
  results_line "| $label | $(g base) / $(g traced) / $(g queued) | $(get rate "$rate" traced packets_per_s) / $(get rate "$rate" queued packets_per_s) | $(get rate "$rate" traced cpu_pct) / $(get rate "$rate" queued cpu_pct) | $(get rate "$rate" queued utime_s) / $(get rate "$rate" queued stime_s) | $(get rate "$rate" queued cpu_us_per_packet) | $(mib "$(get rate "$rate" traced hwm_kb)") / $(mib "$(get rate "$rate" queued hwm_kb)") | $(calc "$(get rate "$rate" traced queue_drops) + $(get rate "$rate" queued queue_drops)" %.0f) |"
done

results_line ""
results_line "² with --pps, no more traces run at once than the budget serves (pps × timeout ÷ 16 = 62 by default); a flow beyond waits for a place with its packets past the queue (conntrack mark), first come first served."
results_line "¹ queue_dropped + user_dropped (/proc/net/netfilter/nfnetlink_queue) + the netlink socket's drops (/proc/net/netlink) + packets that passed untraced because the queue was full (fail-open; nfqtrace reports them at exit)."

# ASCII plot: CPU per flow and peak RSS against flows.
bar() { awk -v v="$1" -v m="$2" -v ch="$3" 'BEGIN { n = (m > 0 && v == v + 0) ? int(40 * v / m + 0.5) : 0; s = ""; for (i = 0; i < n; i++) s = s ch; print s }'; }
maxc=$(for n in "${FLOWS[@]}"; do get flows "$n" traced cpu_ms_per_flow; done | grep -v nan | sort -g | tail -n1)
maxm=$(for n in "${FLOWS[@]}"; do mib "$(get flows "$n" traced hwm_kb)"; done | grep -v nan | sort -g | tail -n1)
results_line ""
results_line '```'
results_line "flows   CPU ms per flow (#), peak RSS MiB (=)"
for n in "${FLOWS[@]}"; do
  c=$(get flows "$n" traced cpu_ms_per_flow) m=$(mib "$(get flows "$n" traced hwm_kb)")
  results_line "$(printf '%6s  %-40s %s ms' "$n" "$(bar "$c" "${maxc:-0}" '#')" "$c")"
  results_line "$(printf '%6s  %-40s %s MiB' "" "$(bar "$m" "${maxm:-0}" '=')" "$m")"
done
results_line '```'

if command -v gnuplot >/dev/null; then
  awk -F, '$1 == "flows" && $3 == "traced" { print $2, $12, $13 / 1024 }' "$CSV" >"$NET_TMP/flows.dat"
  awk -F, '$1 == "rate" && $3 == "queued" && $6 > 0 { print $6, $10, $11 }' "$CSV" | sort -n >"$NET_TMP/rate.dat"
  if gnuplot 2>"$NET_TMP/gnuplot.err" <<EOF
set terminal pngcairo size 1000,420 noenhanced font ",10"
set output "$BENCH_OUT/cost_curve.png"
set multiplot layout 1,2 title "nfqtrace cost ($(uname -r), $(cpu_model), $(date -u +%Y-%m-%d))"
set logscale x
set grid
set xlabel "traced flows (1 write/s each)"
set ylabel "CPU ms per flow"
set y2label "peak RSS (MiB)"
set ytics nomirror
set y2tics
set key top left
set yrange [0:*]
set y2range [0:*]
plot "$NET_TMP/flows.dat" using 1:2 with linespoints title "CPU ms per flow", \
     "$NET_TMP/flows.dat" using 1:3 axes x1y2 with linespoints title "peak RSS MiB"
set xlabel "packets queued per second (one iperf3 flow, GSO off, every packet queued)"
set ylabel "CPU % of one core"
set y2label "CPU µs per packet"
plot "$NET_TMP/rate.dat" using 1:2 with linespoints title "CPU %", \
     "$NET_TMP/rate.dat" using 1:3 axes x1y2 with linespoints title "µs per packet"
unset multiplot
EOF
  then
    results_line ""
    results_line "Plot: cost_curve.png."
  else
    warn "gnuplot failed: $(head -3 "$NET_TMP/gnuplot.err")"
  fi
else
  # Optional: the tables and the ASCII plot above hold the same numbers.
  log "gnuplot is not installed: cost_curve.png not drawn (apt-get install gnuplot-nox to draw it)"
  results_line ""
  results_line "Plot: not drawn (gnuplot not installed)."
fi
results_line ""
results_line "Raw data: $(basename "$CSV")."
results_print
