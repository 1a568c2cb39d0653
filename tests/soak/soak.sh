#!/usr/bin/env bash
# Soak test: nfqtrace on a busy client for MINUTES minutes (default 30).
#
#   sudo bash tests/soak/soak.sh [MINUTES] [BINARY]
#   sudo SOAK_MINUTES=1 bash tests/soak/soak.sh          # quick mode
#
# Network (tests/netns/lib.sh): client — r1 — r2 — r3 — server, ICMP rate
# limits off on the routers. tests/soak/loadgen.cpp (built by CMake with
# nfqtrace, taken from helpers/ next to BINARY, or NFQTRACE_HELPERS=DIR):
# a server on port 7000 (IPv4 and IPv6) that accepts any number of
# connections and reads what they send, and a load generator on the client
# that keeps SOAK_CONNS (200) connections open at any time, half IPv4, half
# IPv6, each living a random 1-20 s and sending a 20-120 byte message every
# ~100 ms, replaced at once when it closes (about 19 new connections a
# second). nfqtrace runs on the client:
#   nfqtrace --dport 7000 --repeat 5 --format json --max-flows 500
# Every SOAK_INTERVAL (30) s: nfqtrace's VmRSS and VmHWM, open fds, CPU
# share, trace records so far, the rule keeper's VmRSS, the client
# namespace's NFQUEUE counters (/proc/net/netfilter/nfnetlink_queue:
# waiting, dropped, user_dropped, id sequence), the load generator's figures,
# lines on nfqtrace's stderr that are not its start line. At the end
# SIGINT, under load.
#
# Verdicts: nfqtrace runs to the end and exits 0 within 10 s of SIGINT; no
# rule is left; no error line on stderr; traces keep coming (every interval
# adds some); RSS flat (max of the last third of the samples within 10 % of
# the max of the first third: last 10 min vs first 10 min for 30 minutes);
# fds flat (last-third max <= first-third max + 5); the summary line's trace
# count equals the trace records written; the output's tail is JSON Lines
# (the whole file is hundreds of MiB). Harness sanity: the load
# held ~SOAK_CONNS connections with no failed connect. Exit 0 / 1 / 77.
set -euo pipefail
SOAK_DIR=$(cd "$(dirname "$0")" && pwd)
MINUTES=${1:-${SOAK_MINUTES:-30}}
BIN=${2:-}
if [[ -z $BIN ]]; then
  for b in "$SOAK_DIR/../../build/nfqtrace" "$SOAK_DIR/../../../build-rel/nfqtrace"; do
    [[ -x $b ]] && { BIN=$(cd "$(dirname "$b")" && pwd)/nfqtrace; break; }
  done
fi
source "$SOAK_DIR/../netns/lib.sh"
net_init soak
require "nfqtrace binary given (tests/soak/soak.sh [MINUTES] [BINARY])" nfqtrace_binary_ok "$BIN"
net_helpers "$BIN"
LOADGEN=$(net_helper loadgen) || exit 1
if ! [[ $MINUTES =~ ^[0-9]+$ ]] || (( MINUTES < 1 )); then die "MINUTES must be a whole number >= 1, got '$MINUTES'"; fi
CONNS=${SOAK_CONNS:-200} INTERVAL=${SOAK_INTERVAL:-30} PORT=7000

section "soak: $MINUTES min, $CONNS connections, sample every $INTERVAL s"
echo "machine: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "binary:  $BIN"
echo "loadgen: $LOADGEN"
net_build 3
net_icmp_ratelimit_off
net_describe 4
CLI=$(net_client) SRV=$(net_server)
DST4=$(net_server_addr 4) DST6=$(net_server_addr 6)

bg_start server ip netns exec "$SRV" "$LOADGEN" server $PORT
require "the server listens on port $PORT" wait_until 5 port_listening "$SRV" $PORT

require "nfqtrace starts and installs its rules" nfqtrace_start nfq "$CLI" "$BIN" \
  --dport $PORT --repeat 5 --format json --max-flows 500
NFQ_PID=${BG_PID[nfq]} OUT=${BG_OUT[nfq]} ERR=${BG_ERR[nfq]}
require "pid $NFQ_PID is nfqtrace itself ($(cat "/proc/$NFQ_PID/comm" 2>/dev/null))" \
  test "$(cat "/proc/$NFQ_PID/comm" 2>/dev/null)" = nfqtrace
bg_start load ip netns exec "$CLI" "$LOADGEN" client "$CONNS" 1 20 100 10 "$DST4,$DST6" $PORT
log "load started (pid ${BG_PID[load]})"

# ------------------------------------------------------------ sampling
CLK_TCK=$(getconf CLK_TCK)
TRACES=0 OFFSET=0 PREV_TICKS=0 PREV_T=0
SAMPLES="$NET_TMP/samples"   # one line per sample, the table's columns
: >"$SAMPLES"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
keeper_pid() { ps -o pid= --ppid "$NFQ_PID" 2>/dev/null | head -n1 | tr -d ' '; }
# count_new_traces: adds the trace records written since the last call
# (complete lines only) to TRACES, without reading the whole output again.
count_new_traces() {
  local size chunk="$NET_TMP/chunk" tail_len=0 n
  size=$(stat -c %s "$OUT")
  (( size > OFFSET )) || return 0
  dd if="$OUT" iflag=skip_bytes,count_bytes skip="$OFFSET" count=$((size - OFFSET)) status=none >"$chunk"
  if [[ -n $(tail -c1 "$chunk") ]]; then tail_len=$(tail -n1 "$chunk" | wc -c); tail_len=$((tail_len - 1)); fi
  n=$(head -c $(( $(stat -c %s "$chunk") - tail_len )) "$chunk" | grep -c -F '"type":"trace"' || true)
  TRACES=$((TRACES + n)) OFFSET=$((size - tail_len))
}
# queue_counters: "waiting dropped user_dropped id_sequence" of queue 0 in the client.
queue_counters() {
  ns_exec "$CLI" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
    awk '$1 == 0 { print $3, $6, $7, $8; found = 1 } END { if (!found) print "- - - -" }'
}
error_lines() { grep -v -c -E '^nfqtrace: (tracing \(|[0-9]+ traces, )' "$ERR" || true; }
load_field() { grep '^stats ' "${BG_OUT[load]}" | tail -n1 | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

HEADER=$(printf '%6s %9s %9s %4s %5s %8s %8s %6s %5s %7s %10s %5s %7s %4s' \
  t_min rss_kb hwm_kb fds cpu% traces keep_kb q_wait q_drop q_udrop q_id_seq open opened err)
sample() {
  local t=$1 ticks cpu q kp
  ticks=$(cpu_ticks "$NFQ_PID")
  cpu=$(awk -v a="$ticks" -v b="$PREV_TICKS" -v dt=$((t - PREV_T)) -v hz="$CLK_TCK" \
    'BEGIN { printf "%.1f", (dt > 0 ? 100 * (a - b) / hz / dt : 0) }')
  PREV_TICKS=$ticks PREV_T=$t
  count_new_traces
  q=$(queue_counters)
  kp=$(keeper_pid)
  # $q: four columns on purpose; ls: /proc/PID/fd holds numbers only.
  # shellcheck disable=SC2086,SC2012
  printf '%6.1f %9s %9s %4s %5s %8s %8s %6s %5s %7s %10s %5s %7s %4s\n' \
    "$(awk -v t="$t" 'BEGIN { print t / 60 }')" \
    "$(status_kb "$NFQ_PID" VmRSS)" "$(status_kb "$NFQ_PID" VmHWM)" \
    "$(ls "/proc/$NFQ_PID/fd" 2>/dev/null | wc -l)" "$cpu" "$TRACES" \
    "$( [[ -n $kp ]] && status_kb "$kp" VmRSS || echo -)" $q \
    "$(load_field open)" "$(load_field opened)" "$(error_lines)" | tee -a "$SAMPLES"
}

section "samples (every $INTERVAL s; traces = trace records so far; q_* = kernel queue 0 counters)"
echo "$HEADER"
START=$(date +%s)
PREV_TICKS=$(cpu_ticks "$NFQ_PID")
n_samples=$((MINUTES * 60 / INTERVAL))
alive=1
for ((k = 1; k <= n_samples; k++)); do
  while (( $(date +%s) < START + k * INTERVAL )); do
    bg_running nfq || break
    sleep 1
  done
  if ! bg_running nfq; then alive=0; log "nfqtrace is no longer running"; break; fi
  sample $((k * INTERVAL))
done

# ------------------------------------------------------------ the end
section "SIGINT to nfqtrace, under load"
check "nfqtrace ran for the whole $MINUTES min" test "$alive" -eq 1
t0=$(date +%s%N)
bg_signal nfq INT
rc=0; nfqtrace_wait nfq 10 || rc=$?
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "nfqtrace exits 0 within 10 s of SIGINT (status $rc, after $stop_ms ms)" test "$rc" -eq 0
check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
bg_signal load TERM
bg_wait load 5 >/dev/null 2>&1 || true
bg_stop server
show_file "nfqtrace stderr" "$ERR" 20
# The summary lines whole (show_file cuts long lines).
grep -E '^nfqtrace: ([0-9]+ traces, |refused:)' "$ERR" | sed 's/^/  /' || true
tail -n 3 "${BG_OUT[load]}" >"$NET_TMP/load.tail"
show_file "load generator (last lines)" "$NET_TMP/load.tail"
count_new_traces
out_mb=$(awk -v b="$(stat -c %s "$OUT")" 'BEGIN { printf "%.0f", b / 1048576 }')
echo "trace records in all: $TRACES (output $out_mb MiB); reasons:"
grep -o -F -e '"reason":"reached"' -e '"reason":"closed"' -e '"reason":"gaplimit"' \
  -e '"reason":"maxttl"' -e '"reason":"stopped"' "$OUT" | sort | uniq -c | sed 's/^/   /' || true

section "table"
echo "$HEADER"
cat "$SAMPLES"

section "verdicts"
n=$(wc -l <"$SAMPLES")
w=$(( n / 3 )); (( w >= 1 )) || w=1
col_max() { awk -v c="$1" -v from="$2" -v to="$3" 'NR >= from && NR <= to && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$SAMPLES"; }
if (( n >= 1 )); then
  rss_first=$(col_max 2 1 "$w") rss_last=$(col_max 2 $((n - w + 1)) "$n")
  fd_first=$(col_max 4 1 "$w") fd_last=$(col_max 4 $((n - w + 1)) "$n")
  echo "windows: samples 1..$w and $((n - w + 1))..$n of $n"
  check "RSS flat: last-window max $rss_last KiB <= 110% of first-window max $rss_first KiB" \
    test "$rss_last" -le $((rss_first * 11 / 10))
  check "fds flat: last-window max $fd_last <= first-window max $fd_first + 5" \
    test "$fd_last" -le $((fd_first + 5))
  stalls=$(awk '$6 + 0 <= prev + 0 { s++ } { prev = $6 } END { print s + 0 }' "$SAMPLES")
  check "traces keep coming: every interval added trace records ($stalls without; $TRACES in all)" \
    test "$stalls" -eq 0 -a "$TRACES" -gt 0
  min_open=$(awk 'NR == 1 || $12 + 0 < m { m = $12 + 0 } END { print m + 0 }' "$SAMPLES")
  check "harness: the load held at least 90% of $CONNS connections at every sample (min $min_open)" \
    test "$min_open" -ge $((CONNS * 9 / 10))
  failed=$(load_field connect_failed)
  check "harness: no connection failed to open (connect_failed=${failed:-?})" test "${failed:-1}" -eq 0
else
  check "at least one sample" false
fi
errs=$(error_lines)
check "no error line on nfqtrace's stderr ($errs)" test "$errs" -eq 0
check "a summary line at exit" grep -q -E '^nfqtrace: [0-9]+ traces, ' "$ERR"
reported=$(grep -o -E '^nfqtrace: [0-9]+ traces, ' "$ERR" | grep -o -E '[0-9]+' | tail -n1)
check "the summary's trace count (${reported:-?}) = trace records in the output ($TRACES)" test "${reported:--1}" -eq "$TRACES"
tail -n 2000 "$OUT" >"$NET_TMP/out.tail"
check "the output's last 2000 lines are JSON objects" json_lines_valid "$NET_TMP/out.tail"
net_finish
