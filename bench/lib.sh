# shellcheck shell=bash
# bench/lib.sh — shared by nfqtrace's benchmarks. Builds on the namespace
# harness of the integration tests (tests/netns/lib.sh): the same networks
# (client — r1 … rN — server), the same unique names
# (nfqt-<bench>-<pid>-*), the same cleanup (background jobs killed by their
# process group id, leftovers in our namespaces by pid, namespaces and temp
# dir deleted, whatever the exit path). All traffic stays inside them.
#
#   source "$(dirname "$0")/lib.sh"
#   bench_init NAME "$@"     # [NFQTRACE] [--quick]; root check, tools, network helpers
#
# A bench prints a markdown table and writes it with its raw data to
# $BENCH_OUT (bench/results, or bench/results/quick for --quick). It exits 0
# when it measured (whatever the numbers), non-zero when it could not.
#
# The bench tools (bench/tools: pingpong, manyconn) and the delay line are
# built by CMake with nfqtrace, into <build>/helpers. NFQTRACE_HELPERS: that
# directory; by default helpers/ next to the nfqtrace binary given. run_all.sh
# runs a copy of the binary, so it sets NFQTRACE_HELPERS from the path it was
# given. A missing tool is an error asking for a build; nothing is compiled.
#
# Side by side with an earlier binary: --before=PATH (or --before PATH, or
# NFQTRACE_BEFORE=PATH) names a second nfqtrace, e.g. the last release. The
# benchmarks that compare (throughput, latency, time_to_path) then run their
# traced conditions with it too, as conditions of their own ("<cond>_before",
# interleaved with the rest); the others measure NFQ alone and say so. The
# helpers stay those of NFQ.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/netns/lib.sh
source "$BENCH_DIR/../tests/netns/lib.sh"

NFQ=""          # nfqtrace binary
NFQ_BEFORE=""   # the earlier binary compared with it (--before), or ""
QUICK=0         # 1: the --quick smoke form
BENCH_NAME=""
BENCH_OUT=""    # results directory
PINGPONG=""     # bench tools (NFQTRACE_HELPERS), found by bench_init
MANYCONN=""
CLK_TCK=$(getconf CLK_TCK)

# pick QUICK_VALUE FULL_VALUE
pick() { if (( QUICK )); then echo "$1"; else echo "$2"; fi; }

# bench_init NAME [NFQTRACE] [--quick] [--tool=EXTRA_TOOL...]: see the top.
bench_init() {
  BENCH_NAME=$1; shift
  local arg extra=() usage="usage: sudo bash $0 [/path/to/nfqtrace] [--quick] [--before=/path/to/earlier/nfqtrace]"
  NFQ_BEFORE=${NFQTRACE_BEFORE:-}
  while (( $# )); do
    arg=$1; shift
    case $arg in
      --quick) QUICK=1 ;;
      --full) QUICK=0 ;;
      -h|--help) echo "$usage"; exit 0 ;;
      --tool=*) extra+=("${arg#--tool=}") ;;
      --before=*) NFQ_BEFORE=${arg#--before=} ;;
      --before) (( $# )) || { echo "--before needs a path ($usage)" >&2; exit 2; }; NFQ_BEFORE=$1; shift ;;
      -*) echo "unknown option $arg ($usage)" >&2; exit 2 ;;
      *) NFQ=$arg ;;
    esac
  done
  if [[ -n $NFQ_BEFORE ]]; then
    [[ -x $NFQ_BEFORE ]] || { echo "ERROR: the earlier binary '$NFQ_BEFORE' (--before) is not executable" >&2; exit 1; }
    NFQ_BEFORE=$(cd "$(dirname "$NFQ_BEFORE")" && pwd)/$(basename "$NFQ_BEFORE")
  fi
  [[ -n $NFQ ]] || NFQ="$NET_REPO_DIR/build/nfqtrace"
  if [[ ! -x $NFQ ]]; then
    echo "ERROR: nfqtrace binary '$NFQ' not found or not executable (usage: sudo bash $0 [/path/to/nfqtrace] [--quick])" >&2
    exit 1
  fi
  NFQ=$(cd "$(dirname "$NFQ")" && pwd)/$(basename "$NFQ")
  if [[ -n ${BENCH_RESULTS:-} ]]; then
    BENCH_OUT=$BENCH_RESULTS
  elif (( QUICK )); then
    BENCH_OUT="$BENCH_DIR/results/quick"
  else
    BENCH_OUT="$BENCH_DIR/results"
  fi
  mkdir -p "$BENCH_OUT"
  # Missing tools: exit 1, not the tests' 77 (a bench that cannot measure fails).
  local tool
  for tool in iperf3 nstat awk "${extra[@]}"; do
    command -v "$tool" >/dev/null || { echo "ERROR: $BENCH_NAME needs '$tool', not installed" >&2; exit 1; }
  done
  (( EUID == 0 )) || { echo "ERROR: $BENCH_NAME needs root (network namespaces)" >&2; exit 1; }
  net_init "$BENCH_NAME"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  net_helpers "$NFQ"
  PINGPONG=$(net_helper pingpong) || exit 1
  MANYCONN=$(net_helper manyconn) || exit 1
  write_sampler_script
  section "$BENCH_NAME: $(if (( QUICK )); then echo quick; else echo full; fi) run, nfqtrace $NFQ"
  [[ -z $NFQ_BEFORE ]] || log "earlier binary (--before): $NFQ_BEFORE (compared by the throughput, latency and time_to_path benchmarks only)"
  log "helpers: $NFQTRACE_HELPERS"
}

# bench_icmp_unlimited: routers answer every probe. net_icmp_ratelimit_off
# turns off the per-destination limit; Linux also has a global budget of
# ICMP errors (icmp_msgs_per_sec 1000, burst 50) that hundreds of traces at
# once exceed: the rate mask 0 exempts every ICMP type from both.
bench_icmp_unlimited() {
  net_icmp_ratelimit_off
  local ns
  for ns in $(net_routers); do
    ns_exec "$ns" sysctl -qw net.ipv4.icmp_ratemask=0 net.ipv4.icmp_msgs_per_sec=1000000 \
      net.ipv4.icmp_msgs_burst=1000000 2>/dev/null || true
    ns_exec "$ns" sysctl -qw net.ipv6.icmp.ratemask=0 2>/dev/null || true
  done
}

# bench_network N: client — r1 … rN — server (net_build), ICMP rate limits
# off on the routers (bench_icmp_unlimited). Conntrack keeps its default
# timeouts: nfqtrace clears the bypass mark of a closed connection itself
# (and all its marks at start and exit), so a later connection on the same
# ports is traced (until 7e36097/c472e4b the benchmarks had to make
# conntrack forget closed connections after 1 s for that).
# The client reuses its TIME_WAIT ports for new connections
# (tcp_tw_reuse=1): after a run of 10 000 connections, the next run's
# connect() calls otherwise search a port range a third full of TIME_WAIT
# sockets (60 s), and slow so much that manyconn's one process stalls for
# seconds (10 000 connections then open in 17 s instead of 5, echoes wait
# up to 13 s, with no nfqtrace at all). It also makes port reuse, and so a
# connection on the ports of one traced moments before, common.
bench_network() {
  net_build "$1"
  bench_icmp_unlimited
  ns_exec "$(net_client)" sysctl -qw net.ipv4.tcp_tw_reuse=1 || warn "could not set tcp_tw_reuse in the client"
  net_describe 4
}

# bench_chain3: the network of every benchmark, client — r1 — r2 — r3 —
# server (bench_network 3), with CLI and SRV (the namespaces of the ends)
# and DST (the server's IPv4 address) set.
CLI="" SRV="" DST=""
bench_chain3() {
  section "network: client — r1 — r2 — r3 — server"
  bench_network 3
  # shellcheck disable=SC2034  # used by the benchmarks
  CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr 4)
}

# ---------------------------------------------------------------- numbers

# median < NUMBERS (one a line; empty input: "nan")
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# minmax < NUMBERS: "min..max"
minmax() { sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) print a ".." b; else print "nan" }'; }

# calc EXPR [FORMAT]: awk arithmetic, "nan" when a term is nan or a division by 0.
calc() {
  awk -v fmt="${2:-%.3f}" "BEGIN { if (\"$1\" ~ /nan/) { print \"nan\"; exit }
    x = ($1); printf fmt \"\\n\", x }" 2>/dev/null || echo nan
}
# ratio A B [FORMAT]: A / B
ratio() {
  if [[ $1 == nan || $2 == nan ]] || awk -v b="$2" 'BEGIN { exit !(b + 0 == 0) }'; then echo nan; return; fi
  calc "$1 / $2" "${3:-%.3f}"
}

# csv_col FILE KEY_COLUMN KEY COLUMN: the values of COLUMN (numbers from 1)
# in the rows below the header whose KEY_COLUMN is KEY, "nan" left out.
csv_col() {
  awk -F, -v kc="$2" -v key="$3" -v k="$4" 'NR > 1 && $kc == key && $k != "nan" { print $k }' "$1"
}

# kv FILE KEY: the value of KEY=VALUE in FILE (last occurrence), or "nan".
kv() {
  local v
  v=$(grep -o "\b$2=[^ ]*" "$1" 2>/dev/null | tail -n1 | cut -d= -f2)
  echo "${v:-nan}"
}

# ---------------------------------------------------------------- results

# results_open: starts the markdown table file of this bench.
RESULTS_MD=""
results_open() {
  RESULTS_MD="$BENCH_OUT/$BENCH_NAME.md"
  {
    echo "### $BENCH_NAME ($(if (( QUICK )); then echo quick; else echo full; fi))"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), $(nproc) CPUs: $(cpu_model)"
    echo
  } >"$RESULTS_MD"
}
# results_line TEXT...: a line of the table file (and of the terminal).
results_line() { printf '%s\n' "$*" | tee -a "$RESULTS_MD"; }
# results_print: the table, again, at the end of the output.
results_print() { printf '\n'; cat "$RESULTS_MD"; printf '\n(written to %s)\n' "$RESULTS_MD"; }

cpu_model() { awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo; }

# ---------------------------------------------------------------- nfqtrace

NFQ_PID=""
# nfq_start NAME NS ARGS...: nfqtrace (pid = its own, see nfqtrace_start),
# running with its rules in place.
nfq_start() {
  local name=$1 ns=$2; shift 2
  nfqtrace_start "$name" "$ns" "$NFQ" "$@" || die "nfqtrace did not start (${BG_ERR[$name]})"
  NFQ_PID=${BG_PID[$name]}
  [[ $(cat "/proc/$NFQ_PID/comm" 2>/dev/null) == nfqtrace* ]] || die "pid $NFQ_PID is not nfqtrace"
}
# nfq_start_queue_all NAME NS PORT ARGS...: nfqtrace --no-rules ARGS, fed by
# rules of ours equal to the ones nfqtrace installs for --dport PORT
# (queue every outgoing packet to PORT but its own probes; NFLOG the
# peer's SACKs, FIN and RST) but without the conntrack-mark bypass: every
# packet of the flow goes through user space, also after its trace ended,
# as before the bypass existed (and as with --no-rules, or where conntrack
# marks cannot be set). nfq_stop_queue_all NAME NS removes our rules.
nfq_start_queue_all() {
  local name=$1 ns=$2 port=$3; shift 3
  ns_exec "$ns" iptables-restore --noflush <<EOF
*mangle
:BENCH-QALL-OUT - [0:0]
:BENCH-QALL-IN - [0:0]
-A BENCH-QALL-OUT -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp --dport $port -j NFQUEUE --queue-num 0 --queue-bypass
-A BENCH-QALL-IN -p tcp -m tcp --sport $port ! --tcp-flags FIN,RST NONE -j NFLOG --nflog-group 32768 --nflog-size 128 --nflog-threshold 1
-A BENCH-QALL-IN -p tcp -m tcp --sport $port --tcp-option 5 --tcp-flags FIN,RST NONE -j NFLOG --nflog-group 32768 --nflog-size 128 --nflog-threshold 1
-A POSTROUTING -p tcp -j BENCH-QALL-OUT
-I INPUT 1 -p tcp -j BENCH-QALL-IN
COMMIT
EOF
  bg_start "$name" ip netns exec "$ns" "$NFQ" --no-rules "$@"
  NFQ_PID=${BG_PID[$name]}
  log "started: nfqtrace --no-rules $* (in ${ns#"$NET_PREFIX"}, pid $NFQ_PID), every packet to port $port queued"
  wait_until 5 queue_bound "$NFQ_PID" || { show_file "nfqtrace stderr" "${BG_ERR[$name]}" 20; die "nfqtrace --no-rules did not bind its queue"; }
}
queue_bound() { [[ -n $(awk '$1 == 0' "/proc/$1/net/netfilter/nfnetlink_queue" 2>/dev/null) ]]; }
nfq_stop_queue_all() {
  nfq_stop "$1"
  ns_exec "$2" iptables-restore --noflush <<EOF
*mangle
-D POSTROUTING -p tcp -j BENCH-QALL-OUT
-D INPUT -p tcp -j BENCH-QALL-IN
-F BENCH-QALL-OUT
-F BENCH-QALL-IN
-X BENCH-QALL-OUT
-X BENCH-QALL-IN
COMMIT
EOF
}

# ct_rules_on NS / ct_rules_off NS: no nfqtrace, but rules that make the
# namespace track connections as nfqtrace's do (the conntrack-mark match
# its bypass rule uses, first in POSTROUTING and INPUT, matching nothing
# here): what the bypass itself costs, apart from user space.
ct_rules_on() {
  ns_exec "$1" iptables-restore --noflush <<EOF
*mangle
:BENCH-CT - [0:0]
-A BENCH-CT -m connmark --mark 0x4e510000/0x4e510000 -j RETURN
-A POSTROUTING -p tcp -j BENCH-CT
-I INPUT 1 -p tcp -j BENCH-CT
COMMIT
EOF
}
ct_rules_off() {
  ns_exec "$1" iptables-restore --noflush <<EOF
*mangle
-D POSTROUTING -p tcp -j BENCH-CT
-D INPUT -p tcp -j BENCH-CT
-F BENCH-CT
-X BENCH-CT
COMMIT
EOF
}

# The conditions a flow from the client to PORT is measured in:
#   base     nothing runs: the untraced baseline
#   ctbase   no nfqtrace, but the namespace tracks connections (ct_rules_on)
#   ended    nfqtrace --dport PORT --mode dup --format json: the flow's trace
#            ends within its first round trips, then the bypass
#            ("traced" is the same)
#   repeat1  the same with --repeat 1: traced again every second
#   queued   every packet queued: nfq_start_queue_all, no bypass
# cond_start NAME COND PORT: sets COND up on the client ($CLI); nfqtrace is
# job NAME, its pid in NFQ_PID. cond_stop NAME COND: undoes it (nfqtrace
# must exit 0). cond_traced COND: true when nfqtrace runs in COND.
cond_traced() { [[ $1 != base && $1 != ctbase ]]; }
# A condition named "<cond>_before" is <cond> with the earlier binary
# (--before); cond_base COND: the condition without that suffix.
cond_base() { echo "${1%_before}"; }
cond_before() { [[ $1 == *_before ]]; }
cond_start() {
  local name=$1 cond=$2 port=$3 args
  # nfq_start and nfq_start_queue_all run $NFQ: the earlier binary here.
  local NFQ=$NFQ
  if cond_before "$cond"; then
    [[ -n $NFQ_BEFORE ]] || die "condition '$cond' needs --before"
    NFQ=$NFQ_BEFORE
  fi
  args=(--dport "$port" --mode dup --format json)
  case $(cond_base "$cond") in
    base) ;;
    ctbase) ct_rules_on "$CLI" ;;
    ended|traced) nfq_start "$name" "$CLI" "${args[@]}" ;;
    repeat1) nfq_start "$name" "$CLI" "${args[@]}" --repeat 1 ;;
    queued) nfq_start_queue_all "$name" "$CLI" "$port" "${args[@]}" ;;
    *) die "unknown condition '$cond'" ;;
  esac
}
cond_stop() {
  case $(cond_base "$2") in
    base) ;;
    ctbase) ct_rules_off "$CLI" ;;
    queued) nfq_stop_queue_all "$1" "$CLI" ;;
    *) nfq_stop "$1" ;;
  esac
}

# Rounds, from the trace records of an nfqtrace's output (FILE):
# waves_lower FILE: the waves the rounds sent, summed, counted from below.
#   A dup round sends its first pass (every TTL of its window at once) with
#   one packet and its second pass (every repeat at once) with a later one;
#   the output does not say how many waves a round sent, so a round counts
#   1, plus 1 when a TTL was probed more than once. (A first pass whose
#   window widens sends more waves: never needed on these 4-hop paths.)
waves_lower() {
  trace_records "$1" | jq -s '[.[] | (if any(.hops[]; .probes > 0) then 1 else 0 end)
                                 + (if any(.hops[]; .probes > 1) then 1 else 0 end)] | add // 0'
}
# round_ms FILE: each round's length (trace end − start), ms, one a line.
round_ms() {
  trace_records "$1" | jq -r '[.start, .end] | @tsv' | while IFS=$'\t' read -r a b; do
    echo $(( ($(rfc3339_ns "$b") - $(rfc3339_ns "$a")) / 1000 ))
  done | awk '{ printf "%.3f\n", $1 / 1000 }'
}
# slow_rounds FILE LIMIT_MS: rounds that lasted LIMIT_MS or longer.
slow_rounds() { round_ms "$1" | awk -v l="$2" '$1 >= l { n++ } END { print n + 0 }'; }
# inferred_silent FILE: traces with a hop taken for silent ("silent":"inferred").
inferred_silent() { trace_records "$1" | jq -r 'select(any(.hops[]; .silent? == "inferred")) | 1' | wc -l; }
# late_hops FILE: hop lines of replies that came after their TTL was taken for silent.
late_hops() { jq -R -c 'fromjson? | select(type == "object" and .type == "hop" and .late == true)' "$1" | wc -l; }

# nfq_stop NAME: SIGTERM, waits for its exit (0 expected).
nfq_stop() {
  bg_signal "$1" TERM
  local rc=0
  bg_wait "$1" 15 || rc=$?
  (( rc == 0 )) || { show_file "nfqtrace stderr" "${BG_ERR[$1]}" 20; die "nfqtrace exited with $rc"; }
}
# nfq_summary NAME FIELD: a number of the exit summary line ("packets seen",
# "probes sent", "traces", "replies matched", ...).
nfq_summary() {
  sed -n 's/^nfqtrace: \([0-9]* traces, .*\)$/\1/p' "${BG_ERR[$1]}" | tail -n1 | tr ',' '\n' |
    awk -v f="$2" '{ n = $1; $1 = ""; sub(/^ /, ""); if ($0 == f || index($0, f) == 1) { print n; found = 1 } }
                   END { if (!found) print "nan" }' | head -n1
}

# nfq_untraced NAME: packets of traced connections that passed unqueued
# because the queue was full (fail-open), as nfqtrace reports at its exit
# (rule counter minus the queue's id sequence); 0 when it reports none.
nfq_untraced() {
  local n
  n=$(sed -n 's/^nfqtrace: \([0-9]*\) packets of the traced connections passed untraced.*/\1/p' "${BG_ERR[$1]}" | tail -n1)
  echo "${n:-0}"
}

# cpu_s PID: user + system CPU seconds of the process itself (/proc/PID/stat
# fields 14 and 15; children not included).
cpu_s() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo nan; return; }
  rest=${stat##*) }
  awk -v hz="$CLK_TCK" '{ printf "%.3f\n", ($12 + $13) / hz }' <<<"$rest"
}
utime_s() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo nan; return; }; awk -v hz="$CLK_TCK" '{ printf "%.3f\n", $12 / hz }' <<<"${s##*) }"; }
stime_s() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo nan; return; }; awk -v hz="$CLK_TCK" '{ printf "%.3f\n", $13 / hz }' <<<"${s##*) }"; }
# cpu_ns PID: the same total in ns (/proc/PID/schedstat, first field: time
# on a CPU), for small amounts: /proc/PID/stat counts in ticks of 10 ms.
cpu_ns() { awk '{ print $1; f = 1 } END { if (!f) print "nan" }' "/proc/$1/schedstat" 2>/dev/null || echo nan; }
# hwm_kb PID: peak resident set size (VmHWM), KiB.
hwm_kb() { awk '/^VmHWM:/ { print $2; f = 1 } END { if (!f) print "nan" }' "/proc/$1/status" 2>/dev/null || echo nan; }
rss_kb() { awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print "nan" }' "/proc/$1/status" 2>/dev/null || echo nan; }

# queue_counters PID [QUEUE=0]: "queue_total queue_dropped user_dropped
# socket_drops" of the NFQUEUE as the kernel sees it in PID's namespace
# (/proc/net/netfilter/nfnetlink_queue columns 3, 6, 7; the last is the
# Drops column of the listening netlink socket in /proc/net/netlink: with
# the fail-open queue nfqtrace asks for, a packet that finds the queue full
# or the socket's buffer full is accepted without being queued, and only
# that column counts the latter).
queue_counters() {
  local pid=$1 q=${2:-0} line portid drops
  line=$(awk -v q="$q" '$1 == q { print $2, $3, $6, $7 }' "/proc/$pid/net/netfilter/nfnetlink_queue" 2>/dev/null)
  [[ -n $line ]] || { echo "nan nan nan nan"; return; }
  read -r portid qtotal qdrop udrop <<<"$line"
  drops=$(awk -v p="$portid" '$2 == 12 && $3 == p { print $9 }' "/proc/$pid/net/netlink" 2>/dev/null | head -n1)
  echo "$qtotal $qdrop $udrop ${drops:-nan}"
}

# queue_rule_packets NS: packets the NFQUEUE rules matched (IPv4 + IPv6), from
# the rule counters; "nan" when there are none to read.
queue_rule_packets() {
  { ns_exec "$1" iptables-save -c -t mangle 2>/dev/null; ns_exec "$1" ip6tables-save -c -t mangle 2>/dev/null; } |
    awk '/-j NFQUEUE/ && match($0, /^\[[0-9]+:/) { n += substr($0, 2, RLENGTH - 2); f = 1 }
         END { if (f) print n; else print "nan" }'
}

# The sampler: while PID lives, every INTERVAL s, overwrites OUT with
# "utime_ticks stime_ticks hwm_kb rss_kb queue_total queue_dropped user_dropped
# socket_drops max_queue_total schedstat_runtime_ns"
# (read from /proc, without entering the namespace), so the values are known
# even after a process that ends by itself (--count) is gone.
write_sampler_script() {
  cat >"$NET_TMP/sampler.sh" <<'EOF'
# Every file is read whole first ($(<f): sequential reads): bash's read
# builtin seeks back after over-reading, and a /proc file regenerated in
# between (a number grew a digit) then loses or tears lines.
pid=$1 interval=$2 out=$3 maxq=0 q="nan nan nan nan"
while [[ -e /proc/$pid/stat ]]; do
  stat=$(</proc/$pid/stat) || break
  rest=${stat##*) }; read -r -a f <<<"$rest"
  [[ ${f[0]} == Z || ${f[0]} == X ]] && break   # a zombie: keep the last live sample
  status=$(</proc/$pid/status) || break
  hwm=nan rss=nan
  while read -r k v _; do
    [[ $k == VmHWM: ]] && hwm=$v
    [[ $k == VmRSS: ]] && rss=$v
  done <<<"$status"
  [[ $hwm == nan ]] && break   # gone, mm released
  # (no queue line once nfqtrace has unbound at its exit: keep the last one)
  queues=$(</proc/$pid/net/netfilter/nfnetlink_queue) || queues=""
  while read -r qn portid qt _ _ qd ud _; do
    [[ $qn == 0 ]] || continue
    (( qt > maxq )) && maxq=$qt
    drops=nan
    links=$(</proc/$pid/net/netlink) || links=""
    while read -r _ eth p _ _ _ _ _ d _; do
      [[ $eth == 12 && $p == "$portid" ]] && { drops=$d; break; }
    done <<<"$links"
    q="$qt $qd $ud $drops"
  done <<<"$queues"
  run=$(</proc/$pid/schedstat) || run=nan
  printf '%s %s %s %s %s %s %s\n' "${f[11]}" "${f[12]}" "$hwm" "$rss" "$q" "$maxq" "${run%% *}" >"$out.tmp" && mv -f "$out.tmp" "$out"
  sleep "$interval"
done
EOF
}
# sampler_start NAME PID [INTERVAL=0.1]: the last sample is then in
# $NET_TMP/NAME.sample; sampler_get NAME FIELD (cpu_s utime_s stime_s hwm_kb rss_kb
# queue_total queue_dropped user_dropped socket_drops max_queue_total cpu_ns).
sampler_start() {
  local name=$1 pid=$2 interval=${3:-0.1}
  rm -f "$NET_TMP/$name.sample"
  bg_start "$name" bash "$NET_TMP/sampler.sh" "$pid" "$interval" "$NET_TMP/$name.sample"
}
sampler_wait() { bg_wait "$1" 10 >/dev/null 2>&1 || true; }
sampler_get() {
  local f="$NET_TMP/$1.sample"
  [[ -s $f ]] || { echo nan; return; }
  case $2 in
    cpu_s) awk -v hz="$CLK_TCK" '{ printf "%.3f\n", ($1 + $2) / hz }' "$f" ;;
    utime_s) awk -v hz="$CLK_TCK" '{ printf "%.3f\n", $1 / hz }' "$f" ;;
    stime_s) awk -v hz="$CLK_TCK" '{ printf "%.3f\n", $2 / hz }' "$f" ;;
    hwm_kb) awk '{ print $3 }' "$f" ;;
    rss_kb) awk '{ print $4 }' "$f" ;;
    queue_total) awk '{ print $5 }' "$f" ;;
    queue_dropped) awk '{ print $6 }' "$f" ;;
    user_dropped) awk '{ print $7 }' "$f" ;;
    socket_drops) awk '{ print $8 }' "$f" ;;
    max_queue_total) awk '{ print $9 }' "$f" ;;
    cpu_ns) awk '{ print $10 }' "$f" ;;
    *) echo nan ;;
  esac
}

# ---------------------------------------------------------------- traffic

# iperf_server NS [PORT=5201]: iperf3 -s in NS, listening.
iperf_server() {
  local ns=$1 port=${2:-5201}
  bg_start "iperf-server-$port" ip netns exec "$ns" iperf3 -s -p "$port"
  wait_until 5 port_listening "$ns" "$port" || die "iperf3 server did not start"
}
# iperf_run NS DST SECONDS OMIT OUTFILE [ARGS...]: one iperf3 client run,
# JSON in OUTFILE; prints "gbps retransmits" (receiver's rate over the
# SECONDS after the OMIT first ones; sender's retransmitted segments).
iperf_run() {
  local ns=$1 dst=$2 secs=$3 omit=$4 out=$5; shift 5
  if ! ns_exec "$ns" iperf3 -c "$dst" -t "$secs" -O "$omit" -J "$@" >"$out" 2>&1; then
    # The server is still busy with the last test now and then: once more.
    sleep 1
    ns_exec "$ns" iperf3 -c "$dst" -t "$secs" -O "$omit" -J "$@" >"$out" 2>&1 || {
      show_file "iperf3" "$out" 20; die "iperf3 failed"; }
  fi
  jq -r '"\(.end.sum_received.bits_per_second / 1e9) \(.end.sum_sent.retransmits // 0)"' "$out"
}

# pingpong_server NS PORT
pingpong_server() {
  bg_start "pingpong-server-$2" ip netns exec "$1" "$PINGPONG" server "$2"
  wait_until 5 port_listening "$1" "$2" || die "pingpong server did not start"
}
manyconn_server() {
  bg_start "manyconn-server-$2" ip netns exec "$1" "$MANYCONN" server "$2"
  wait_until 5 port_listening "$1" "$2" || die "manyconn server did not start"
}

# path_rtt_ms NS DST: median round-trip time to DST, ms. With ping (ICMP
# echo) when it is installed, else the median TCP round trip of pingpong
# (30 1-byte requests and responses; PINGPONG_PORT must be served at DST).
PINGPONG_PORT=7001
path_rtt_ms() {
  local ns=$1 dst=$2 out
  if command -v ping >/dev/null; then
    out=$(ns_exec "$ns" ping -n -q -c 20 -i 0.01 "$dst" 2>/dev/null | awk -F/ '/^(rtt|round-trip)/ { print $5 }')
    if [[ -n $out ]]; then echo "$out ping"; return; fi
  fi
  out=$(ns_exec "$ns" "$PINGPONG" ping "$dst" "$PINGPONG_PORT" 30 1 3)
  echo "$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^p50_us=/) { sub(/p50_us=/, "", $i); printf "%.3f", $i / 1000 } }' <<<"$out") tcp"
}

# nstat_snapshot NS FILE: absolute SNMP/netstat counters of NS ("name value").
nstat_snapshot() {
  NSTAT_HISTORY="$NET_TMP/nstat.hist" ns_exec "$1" nstat -asz 2>/dev/null | awk 'NF >= 2 && $1 !~ /^#/ { print $1, $2 }' >"$2"
}
# nstat_delta BEFORE AFTER NAME: the counter's increase.
nstat_delta() {
  awk -v k="$3" 'FNR == NR { if ($1 == k) b = $2; next } $1 == k { a = $2; f = 1 }
                 END { if (f) print a - b; else print "nan" }' "$1" "$2"
}

# rfc3339_ns TIME: ns since the epoch of an RFC 3339 time (date -d).
rfc3339_ns() { date -d "$1" +%s%N; }

# ---------------------------------------------------------------- many flows

# flows_run NAME N INTERVAL_MS HOLD_S OPEN_RATE PORT TRACED(0|1) [NFQ_ARGS...]:
# N slow connections (manyconn client, from the client namespace to a
# manyconn server on PORT in the server namespace: each writes 32 bytes
# every INTERVAL_MS, opened at OPEN_RATE a second, held HOLD_S seconds once
# all are open). TRACED=1: nfqtrace runs on the client first, with
# --dport PORT --mode dup --format json --max-flows N --count N, sampled
# from /proc every 0.1 s (it exits by itself once N traces have ended);
# the connections then go on 2 s more and end (HOLD_S is only the longest
# they wait for the traces).
# Writes KEY=VALUE lines to $NET_TMP/NAME.result: connected failed lost
# echo_p50_us echo_p99_us echo_max_us open_s; and when traced: idle_cpu_s
# idle_cpu_ns idle_hwm_kb (right after its start) traces reached reasons
# inferred trace_probes_p50 trace_probes_p90 (traces that took hops over,
# --stop-set; probes per trace from the trace records)
# all_traces_s (first connection attempt to the last trace's end) cpu_s
# utime_s stime_s cpu_ns hwm_kb queue_dropped user_dropped socket_drops max_queue_total
# packets_seen probes_sent replies_matched flows_waited flows_waited_past passed_untraced
# nfq_exit (its status, or "stopped" when it had to be stopped); always
# client_retrans server_retrans (TcpRetransSegs increase at each end).
flows_run() {
  local name=$1 n=$2 interval=$3 hold=$4 rate=$5 port=$6 traced=$7; shift 7
  local cli srv dst res="$NET_TMP/$name.result" t0 rc=0 last
  cli=$(net_client) srv=$(net_server) dst=$(net_server_addr 4)
  : >"$res"
  if (( traced )); then
    nfq_start "$name-nfq" "$cli" --dport "$port" --mode dup --format json --max-flows "$n" --count "$n" "$@"
    sampler_start "$name-sampler" "$NFQ_PID" 0.1
    {  # its start: rules, sockets
      echo "idle_cpu_s=$(cpu_s "$NFQ_PID")"
      echo "idle_cpu_ns=$(cpu_ns "$NFQ_PID")"
      echo "idle_hwm_kb=$(hwm_kb "$NFQ_PID")"
    } >>"$res"
  fi
  nstat_snapshot "$cli" "$NET_TMP/$name.cli.before"
  nstat_snapshot "$srv" "$NET_TMP/$name.srv.before"
  t0=$(date +%s%N)
  bg_start "$name-mc" ip netns exec "$cli" "$MANYCONN" client "$dst" "$port" "$n" "$interval" "$hold" "$rate" 32
  if (( traced )); then
    # Once nfqtrace is done (--count), the connections go on 2 s more.
    while bg_running "$name-mc" && bg_running "$name-nfq"; do sleep 0.2; done
    if bg_running "$name-mc"; then sleep 2; bg_signal "$name-mc" TERM; fi
  fi
  bg_wait "$name-mc" $(( hold + n / rate + 60 )) || true
  tail -n1 "${BG_OUT[$name-mc]}" | tr ' ' '\n' | grep '=' >>"$res" || echo "connected=0" >>"$res"
  sed 's/^/  /' "${BG_ERR[$name-mc]}" | cut -c1-400
  if (( traced )); then
    # Connections closed above end the traces still running ("closed").
    # Still running 20 s later: stopped by SIGTERM (its summary, and the
    # traces still open as "stopped"), nfq_exit=stopped. An exit status
    # other than 0 either way is nfqtrace failing: the run cannot count.
    if wait_until 20 nfq_gone "$name-nfq"; then
      nfqtrace_wait "$name-nfq" 5 || rc=$?
    else
      warn "$name: nfqtrace still running 20 s after the connections ended ($(trace_records "${BG_OUT[$name-nfq]}" | wc -l) of $n traces): SIGTERM"
      bg_signal "$name-nfq" TERM
      nfqtrace_wait "$name-nfq" 15 || rc=$?
      [[ $rc != 0 ]] || rc=stopped
    fi
    if [[ $rc != 0 && $rc != stopped ]]; then
      show_file "nfqtrace stderr" "${BG_ERR[$name-nfq]}" 20
      die "$name: nfqtrace exited with $rc"
    fi
    sampler_wait "$name-sampler"
    local out=${BG_OUT[$name-nfq]}
    last=$(trace_records "$out" | jq -r '.end' | sort | tail -n1)
    {
      echo "nfq_exit=$rc"
      echo "traces=$(trace_records "$out" | wc -l)"
      echo "reached=$(trace_records "$out" | jq -r 'select(.reached) | 1' | wc -l)"
      echo "reasons=$(trace_records "$out" | jq -r .reason | sort | uniq -c | awk '{ printf "%s%s:%s", (NR > 1 ? ";" : ""), $2, $1 }')"
      # --stop-set: traces that took hops over from an earlier one; probes
      # a trace sent (its own record), median and 90th percentile.
      echo "inferred=$(trace_records "$out" | jq -r 'select(any(.hops[]?; .inferred_from != null)) | 1' | wc -l)"
      echo "trace_probes_p50=$(trace_records "$out" | jq -r '.probes_sent // empty' | median)"
      echo "trace_probes_p90=$(trace_records "$out" | jq -r '.probes_sent // empty' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR - 1) * 0.9) + 1]; else print "nan" }')"
      if [[ -n $last ]]; then echo "all_traces_s=$(calc "($(rfc3339_ns "$last") - $t0) / 1e9")"; else echo "all_traces_s=nan"; fi
      local f
      for f in cpu_s utime_s stime_s cpu_ns hwm_kb queue_dropped user_dropped socket_drops max_queue_total; do
        echo "$f=$(sampler_get "$name-sampler" "$f")"
      done
      echo "packets_seen=$(nfq_summary "$name-nfq" "packets seen")"
      echo "probes_sent=$(nfq_summary "$name-nfq" "probes sent")"
      echo "replies_matched=$(nfq_summary "$name-nfq" "replies matched")"
      echo "flows_waited=$(nfq_summary "$name-nfq" "flows waited for a place")"
      echo "flows_waited_past=$(sed -n 's/^nfqtrace: [0-9]* traces, .* flows waited for a place (\([0-9]*\) of them past the queue).*/\1/p' "${BG_ERR[$name-nfq]}" | tail -n1 | grep . || echo nan)"
      echo "passed_untraced=$(nfq_untraced "$name-nfq")"
    } >>"$res"
  fi
  nstat_snapshot "$cli" "$NET_TMP/$name.cli.after"
  nstat_snapshot "$srv" "$NET_TMP/$name.srv.after"
  echo "client_retrans=$(nstat_delta "$NET_TMP/$name.cli.before" "$NET_TMP/$name.cli.after" TcpRetransSegs)" >>"$res"
  echo "server_retrans=$(nstat_delta "$NET_TMP/$name.srv.before" "$NET_TMP/$name.srv.after" TcpRetransSegs)" >>"$res"
  log "$name: $(tr '\n' ' ' <"$res")"
}
nfq_gone() { ! bg_running "$1"; }
# result NAME KEY
result() { kv "$NET_TMP/$1.result" "$2"; }
