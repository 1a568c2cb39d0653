# shellcheck shell=bash
# lib.sh — real multi-router networks in network namespaces, for nfqtrace's
# integration tests and demo.
#
#   source tests/netns/lib.sh
#   net_init my_test            # root check (exit 77), temp dir, cleanup trap
#   net_build 3                 # client — r1 — r2 — r3 — server
#   net_build 3 2               # same, but server→client goes back via b1 — b2
#   net_silence "$(net_router 2)"   # r2 sends no ICMP time-exceeded
#   net_delay "$(net_router 2)" 20  # r2 holds every forwarded packet 20 ms
#   net_icmp_ratelimit_off      # routers answer every probe
#
# Addressing (benchmarking range RFC 2544 and documentation prefix RFC 3849,
# used only inside the namespaces). A chain is numbered from its origin: the
# forward chain from the client, the return chain from the server. Link i of
# the chain has .1 / ::1 on the origin side and .2 / ::2 on the far side:
#   forward link i: 198.18.i.0/24   2001:db8:1:i::/64
#   return  link j: 198.19.j.0/24   2001:db8:2:j::/64
# So the client is 198.18.1.1, the server 198.18.(N+1).2, router ri answers a
# client's probe from 198.18.i.2 and return router bj a server's probe from
# 198.19.j.2 (Linux sends ICMP errors from the interface facing the sender).
#
# Everything a test starts is named nfqt-<test>-<pid>-*, killed by its
# process id (group) and deleted on exit, whatever the exit path.
#
# Helper programs (delayq, streamcheck, forge_icmp here; pingpong, manyconn,
# loadgen for the benchmarks and the soak) are built by CMake with the rest,
# into <build>/helpers, so that they get the project's warnings and a break
# shows in the build. NFQTRACE_HELPERS: that directory; by default helpers/
# next to the nfqtrace binary the test is given (net_helpers). A missing
# helper fails the test with a request to build; nothing is compiled here.

set -euo pipefail

NET_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NET_REPO_DIR=$(cd "$NET_LIB_DIR/../.." && pwd)

NET_TEST=""          # test name, part of every namespace name
NET_PREFIX=""        # nfqt-<test>-<pid>-
NET_TMP=""           # temp dir: logs, data files, helper scripts
NET_ROUTERS=0        # N: routers on the forward chain
NET_RET_ROUTERS=0    # M: routers on the return chain (0: symmetric)
NET_NAMESPACES=()    # every namespace created, for cleanup
declare -A NET_SILENT=()   # namespace -> 1 when it sends no time-exceeded
declare -A BG_PID=()       # background job name -> pid (= its process group)
declare -A BG_OUT=()       # background job name -> stdout file
declare -A BG_ERR=()       # background job name -> stderr file
NET_CHECKS_OK=0
NET_CHECKS_FAILED=0
NFQTRACE_HELPERS=${NFQTRACE_HELPERS:-}   # built helper programs (see the top)
TRACE_HOPS_FILE=""   # hop list of the last trace check_trace looked at

# ---------------------------------------------------------------- messages

NET_QUIET=${NET_QUIET:-0}   # 1: log() prints nothing (the demo)
log()  { (( NET_QUIET )) || printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
section() { printf '\n=== %s ===\n' "$*"; }

# Prints a file, indented, for evidence in the test log.
show_file() {
  local title=$1 file=$2 max=${3:-60}
  printf -- '--- %s (%s)\n' "$title" "$file"
  if [[ -s $file ]]; then
    head -n "$max" "$file" | cut -c1-230 | sed 's/^/    /'
    local n; n=$(wc -l <"$file")
    (( n > max )) && printf '    ... (%d more lines)\n' $((n - max))
  else
    printf '    (empty)\n'
  fi
  return 0
}

# check DESCRIPTION CMD...: runs CMD, records and prints PASS or FAIL.
check() {
  local what=$1; shift
  if "$@"; then
    NET_CHECKS_OK=$((NET_CHECKS_OK + 1)); printf 'PASS: %s\n' "$what"
  else
    NET_CHECKS_FAILED=$((NET_CHECKS_FAILED + 1)); printf 'FAIL: %s\n' "$what"
  fi
  return 0
}

# Ends the test: exit 0 when every check passed, 1 otherwise.
net_finish() {
  printf '\nRESULT %s: checks ok %d, checks failed %d\n' "$NET_TEST" "$NET_CHECKS_OK" "$NET_CHECKS_FAILED"
  (( NET_CHECKS_FAILED == 0 && NET_CHECKS_OK > 0 )) && exit 0
  exit 1
}

# -------------------------------------------------------------- lifecycle

# net_init TEST_NAME [EXTRA_TOOL...]: skips (exit 77) without root or a
# needed tool, makes the temp dir and installs the cleanup trap.
net_init() {
  NET_TEST=$1; shift
  if (( EUID != 0 )); then
    echo "SKIP: $NET_TEST needs root (network namespaces)"; exit 77
  fi
  local tool
  for tool in ip iptables ip6tables iptables-save ip6tables-save traceroute socat jq sha256sum ss setsid env "$@"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $NET_TEST needs '$tool', not installed"; exit 77; }
  done
  NET_PREFIX="nfqt-${NET_TEST}-$$-"
  NET_TMP=$(mktemp -d "/tmp/nfqt-${NET_TEST}.XXXXXX")
  trap net_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  write_helper_scripts
}

# Kills every background job by its process group id, then whatever still
# runs inside our namespaces (by pid), deletes the namespaces and temp dir.
net_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local name pid ns
  for name in "${!BG_PID[@]}"; do
    pid=${BG_PID[$name]}
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  done
  for name in "${!BG_PID[@]}"; do
    pid=${BG_PID[$name]}
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null
  done
  for ns in "${NET_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for ns in "${NET_NAMESPACES[@]}"; do
    ip netns delete "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  if [[ -n $NET_TMP && -d $NET_TMP ]]; then
    if [[ ${NFQT_KEEP_TMP:-0} == 1 ]]; then
      echo "(kept $NET_TMP)"
    else
      rm -rf "$NET_TMP"
    fi
  fi
  exit "$rc"
}

# ------------------------------------------------------------ background jobs

# bg_start NAME CMD...: runs CMD in its own session (so its pid is its process
# group id and cleanup can kill the whole group), stdout and stderr to files.
# A script's background jobs start with SIGINT and SIGQUIT ignored; env gives
# CMD the default actions back, as a command started from a terminal has
# (else a program that waits for signals with signalfd would never see them).
bg_start() {
  local name=$1; shift
  BG_OUT[$name]="$NET_TMP/$name.out"
  BG_ERR[$name]="$NET_TMP/$name.err"
  setsid env --default-signal=INT,QUIT "$@" >"${BG_OUT[$name]}" 2>"${BG_ERR[$name]}" </dev/null &
  BG_PID[$name]=$!
}

bg_running() { kill -0 "${BG_PID[$1]}" 2>/dev/null; }

# bg_wait NAME TIMEOUT_S: waits for the job, prints nothing, returns its exit
# status, or 124 after killing it when it outlives the timeout.
bg_wait() {
  local name=$1 timeout=$2 pid=${BG_PID[$1]} deadline
  deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s%N) > deadline )); then
      kill -KILL -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null || true
      return 124
    fi
    sleep 0.05
  done
  local rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

# bg_signal NAME SIGNAL: signals the job's main process only (no error when
# it is already gone: the checks that follow will say so).
bg_signal() { kill -s "$2" "${BG_PID[$1]}" 2>/dev/null || true; }

# bg_stop NAME: ends a helper job (server, delay line) we no longer need.
bg_stop() {
  local pid=${BG_PID[$1]}
  kill -TERM -- "-$pid" 2>/dev/null || true
  bg_wait "$1" 3 >/dev/null 2>&1 || true
}

# wait_until TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds.
wait_until() {
  local timeout=$1; shift
  local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) > deadline )) && return 1
    sleep 0.1
  done
  return 0
}

# ------------------------------------------------------------- topology

net_client() { echo "${NET_PREFIX}cli"; }
net_server() { echo "${NET_PREFIX}srv"; }
net_router() { echo "${NET_PREFIX}r$1"; }      # forward chain, 1..N
net_ret_router() { echo "${NET_PREFIX}b$1"; }  # return chain, 1..M

# Addresses of the ends (what a connection uses).
net_client_addr() { if [[ $1 == 4 ]]; then echo 198.18.1.1; else echo 2001:db8:1:1::1; fi; }
net_server_addr() {
  local l=$((NET_ROUTERS + 1))
  if [[ $1 == 4 ]]; then echo "198.18.$l.2"; else echo "2001:db8:1:$l::2"; fi
}

# link_addr FAMILY CHAIN(1 fwd, 2 ret) LINK SIDE(1 origin side, 2 far side)
link_addr() {
  local fam=$1 chain=$2 link=$3 side=$4
  if [[ $fam == 4 ]]; then echo "198.$((17 + chain)).$link.$side"; else echo "2001:db8:$chain:$link::$side"; fi
}
link_net() {
  local fam=$1 chain=$2 link=$3
  if [[ $fam == 4 ]]; then echo "198.$((17 + chain)).$link.0/24"; else echo "2001:db8:$chain:$link::/64"; fi
}

ns_exec() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

new_namespace() {
  local ns=$1
  ip netns add "$ns"
  NET_NAMESPACES+=("$ns")
  ns_exec "$ns" ip link set lo up
  # Name look-ups (nfqtrace's reverse DNS is on by default) stay inside:
  # `ip netns exec` mounts this over /etc/resolv.conf, and nothing answers
  # on the namespace's own loopback. The host's resolver is never asked.
  mkdir -p "/etc/netns/$ns"
  echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
  # Loose reverse-path filtering: the asymmetric path delivers the client's
  # packets on an interface its routes don't point to.
  ns_exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  # No duplicate address detection, not even for link-local addresses:
  # while those are tentative, neighbour discovery fails and the first IPv6
  # packets on a fresh link wait a second or more.
  ns_exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# net_ready: waits until every link is operationally up (the kernel turns a
# fresh veth's carrier on up to a second late and drops what is sent before:
# the first IPv6 neighbour solicitation got lost that way) and no address
# is tentative.
links_ready() {
  local ns
  for ns in "${NET_NAMESPACES[@]}"; do
    ns_exec "$ns" ip -o link show | grep -v ': lo:' | grep -q -v 'state UP' && return 1
    [[ -z $(ns_exec "$ns" ip -6 addr show tentative) ]] || return 1
  done
  return 0
}
net_ready() { wait_until 10 links_ready || warn "some links are still not up"; }

enable_forwarding() {
  ns_exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# connect NS_A IF_A NS_B IF_B CHAIN LINK: a veth link, A on the origin side.
connect() {
  local a=$1 ifa=$2 b=$3 ifb=$4 chain=$5 link=$6
  ip link add name "$ifa" netns "$a" type veth peer name "$ifb" netns "$b"
  ns_exec "$a" ip -4 addr add "$(link_addr 4 "$chain" "$link" 1)/24" dev "$ifa"
  ns_exec "$b" ip -4 addr add "$(link_addr 4 "$chain" "$link" 2)/24" dev "$ifb"
  # nodad: usable at once, no duplicate address detection delay
  ns_exec "$a" ip -6 addr add "$(link_addr 6 "$chain" "$link" 1)/64" dev "$ifa" nodad
  ns_exec "$b" ip -6 addr add "$(link_addr 6 "$chain" "$link" 2)/64" dev "$ifb" nodad
  ns_exec "$a" ip link set "$ifa" up
  ns_exec "$b" ip link set "$ifb" up
  ns_exec "$a" sysctl -qw "net.ipv4.conf.$ifa.rp_filter=0"
  ns_exec "$b" sysctl -qw "net.ipv4.conf.$ifb.rp_filter=0"
}

add_route() { local ns=$1 fam=$2; shift 2; ns_exec "$ns" ip -"$fam" route add "$@"; }

# net_build N [M]: client — r1 … rN — server, every link dual stack. With
# M > 0 the server sends to the client through b1 … bM instead (its default
# route), while the forward routers still carry client→server traffic and
# their own ICMP back to the client.
net_build() {
  NET_ROUTERS=$1
  NET_RET_ROUTERS=${2:-0}
  local n=$NET_ROUTERS m=$NET_RET_ROUTERS i j k fam
  local cli srv; cli=$(net_client); srv=$(net_server)
  new_namespace "$cli"
  new_namespace "$srv"
  for ((i = 1; i <= n; i++)); do new_namespace "$(net_router $i)"; enable_forwarding "$(net_router $i)"; done
  for ((j = 1; j <= m; j++)); do new_namespace "$(net_ret_router $j)"; enable_forwarding "$(net_ret_router $j)"; done

  # Forward chain: node 0 is the client, node N+1 the server.
  local fwd=("$cli"); for ((i = 1; i <= n; i++)); do fwd+=("$(net_router $i)"); done; fwd+=("$srv")
  for ((i = 1; i <= n + 1; i++)); do
    local ifa=srvside ifb=clside
    (( i == 1 )) && ifa=fwd
    (( i == n + 1 )) && ifb=fwd
    connect "${fwd[i-1]}" "$ifa" "${fwd[i]}" "$ifb" 1 "$i"
  done
  for fam in 4 6; do
    add_route "$cli" $fam default via "$(link_addr $fam 1 1 2)" src "$(net_client_addr $fam)"
    if (( m == 0 )); then
      add_route "$srv" $fam default via "$(link_addr $fam 1 $((n + 1)) 1)" src "$(net_server_addr $fam)"
    fi
    for ((i = 1; i <= n; i++)); do
      for ((k = 1; k <= n + 1; k++)); do
        if (( k < i )); then add_route "${fwd[i]}" $fam "$(link_net $fam 1 $k)" via "$(link_addr $fam 1 $i 1)"; fi
        if (( k > i + 1 )); then add_route "${fwd[i]}" $fam "$(link_net $fam 1 $k)" via "$(link_addr $fam 1 $((i + 1)) 2)"; fi
      done
    done
  done

  if (( m == 0 )); then net_ready; return 0; fi
  # Return chain: node 0 is the server, node M+1 the client.
  local ret=("$srv"); for ((j = 1; j <= m; j++)); do ret+=("$(net_ret_router $j)"); done; ret+=("$cli")
  for ((j = 1; j <= m + 1; j++)); do
    local ifa=clside ifb=srvside
    (( j == 1 )) && ifa=ret
    (( j == m + 1 )) && ifb=ret
    connect "${ret[j-1]}" "$ifa" "${ret[j]}" "$ifb" 2 "$j"
  done
  for fam in 4 6; do
    add_route "$srv" $fam default via "$(link_addr $fam 2 1 2)" src "$(net_server_addr $fam)"
    for ((j = 1; j <= m; j++)); do
      # Toward the server: its address and the return links behind us.
      add_route "${ret[j]}" $fam "$(link_net $fam 1 $((n + 1)))" via "$(link_addr $fam 2 $j 1)"
      for ((k = 1; k < j; k++)); do add_route "${ret[j]}" $fam "$(link_net $fam 2 $k)" via "$(link_addr $fam 2 $j 1)"; done
      # Toward the client: its address and the return links ahead.
      add_route "${ret[j]}" $fam "$(link_net $fam 1 1)" via "$(link_addr $fam 2 $((j + 1)) 2)"
      for ((k = j + 2; k <= m + 1; k++)); do add_route "${ret[j]}" $fam "$(link_net $fam 2 $k)" via "$(link_addr $fam 2 $((j + 1)) 2)"; done
    done
  done
  net_ready
}

# net_routers: every router namespace, forward chain first.
net_routers() {
  local i
  for ((i = 1; i <= NET_ROUTERS; i++)); do net_router $i; done
  for ((i = 1; i <= NET_RET_ROUTERS; i++)); do net_ret_router $i; done
}

# net_silence NS: the router forwards as usual but never says time-exceeded.
net_silence() {
  local ns=$1
  ns_exec "$ns" iptables -A OUTPUT -p icmp --icmp-type time-exceeded -j DROP
  ns_exec "$ns" ip6tables -A OUTPUT -p icmpv6 --icmpv6-type time-exceeded -j DROP
  NET_SILENT[$ns]=1
}

# net_icmp_ratelimit_off: routers answer every probe (tests that send many).
net_icmp_ratelimit_off() {
  local ns
  for ns in $(net_routers); do
    ns_exec "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
  done
}

# net_helpers NFQTRACE: unless NFQTRACE_HELPERS is set, the helpers are the
# ones built with that binary, in helpers/ next to it (without a binary:
# build/helpers of this checkout).
net_helpers() {
  [[ -n $NFQTRACE_HELPERS ]] && return 0
  NFQTRACE_HELPERS=$(dirname "${1:-$NET_REPO_DIR/build/nfqtrace}")/helpers
}

# net_helper NAME: prints the path of the built helper NAME, or says to build
# and fails (use as: bin=$(net_helper NAME) || exit 1).
net_helper() {
  local bin="${NFQTRACE_HELPERS:-$NET_REPO_DIR/build/helpers}/$1"
  [[ -x $bin ]] && { echo "$bin"; return 0; }
  die "helper '$1' not found at $bin (NFQTRACE_HELPERS): build the project (cmake --build build)"
}

# net_delay NS MS [QUEUE]: the router holds every packet it forwards MS ms,
# i.e. MS each way on the link behind it (packets it sends itself, like its
# own ICMP, are not delayed). The NFQUEUE rule has no bypass: if the delay
# line dies, traffic stops and the test fails loudly instead of silently
# running without delay.
net_delay() {
  local ns=$1 ms=$2 queue=${3:-0} bin name
  bin=$(net_helper delayq) || exit 1
  name="delayq-${ns#"$NET_PREFIX"}"
  bg_start "$name" ip netns exec "$ns" "$bin" "$queue" "$ms"
  wait_until 5 grep -q ready "${BG_OUT[$name]}" || { show_file "$name stderr" "${BG_ERR[$name]}"; die "delayq did not start in $ns"; }
  ns_exec "$ns" iptables -t mangle -A FORWARD -j NFQUEUE --queue-num "$queue"
  ns_exec "$ns" ip6tables -t mangle -A FORWARD -j NFQUEUE --queue-num "$queue"
}

# net_expected_forward FAM: the hops a client→server trace must show, from
# the topology alone ("ttl addr", or "ttl *" for a silent router).
net_expected_forward() {
  local fam=$1 i
  for ((i = 1; i <= NET_ROUTERS; i++)); do
    if [[ -n ${NET_SILENT[$(net_router $i)]:-} ]]; then echo "$i *"; else echo "$i $(link_addr "$fam" 1 $i 2)"; fi
  done
  echo "$((NET_ROUTERS + 1)) $(net_server_addr "$fam")"
}

# net_expected_return FAM: the hops of a server→client trace.
net_expected_return() {
  local fam=$1 j ttl=0
  if (( NET_RET_ROUTERS > 0 )); then
    for ((j = 1; j <= NET_RET_ROUTERS; j++)); do
      if [[ -n ${NET_SILENT[$(net_ret_router $j)]:-} ]]; then echo "$j *"; else echo "$j $(link_addr "$fam" 2 $j 2)"; fi
    done
    echo "$((NET_RET_ROUTERS + 1)) $(net_client_addr "$fam")"
    return 0
  fi
  for ((j = NET_ROUTERS; j >= 1; j--)); do
    ttl=$((ttl + 1))
    if [[ -n ${NET_SILENT[$(net_router $j)]:-} ]]; then echo "$ttl *"; else echo "$ttl $(link_addr "$fam" 1 $((j + 1)) 1)"; fi
  done
  echo "$((ttl + 1)) $(net_client_addr "$fam")"
}

# net_describe: one line per node, for the log.
net_describe() {
  local fam=${1:-4} i
  local line; line="client $(net_client_addr "$fam")"
  for ((i = 1; i <= NET_ROUTERS; i++)); do
    line+=" -> r$i $(link_addr "$fam" 1 $i 2)"
    [[ -n ${NET_SILENT[$(net_router $i)]:-} ]] && line+="(silent)"
  done
  line+=" -> server $(net_server_addr "$fam")"
  echo "forward: $line"
  if (( NET_RET_ROUTERS > 0 )); then
    line="server"
    for ((i = 1; i <= NET_RET_ROUTERS; i++)); do
      line+=" -> b$i $(link_addr "$fam" 2 $i 2)"
      [[ -n ${NET_SILENT[$(net_ret_router $i)]:-} ]] && line+="(silent)"
    done
    echo "return:  $line -> client"
  fi
}

# ------------------------------------------------------------ transfers

# Helper scripts run by socat in the namespaces.
write_helper_scripts() {
  # slowcat FILE CHUNK_BYTES INTERVAL_S: writes FILE in chunks, pausing
  # between them, so a transfer lasts long enough to be traced.
  cat >"$NET_TMP/slowcat.sh" <<'EOF'
set -eu
file=$1 chunk=$2 interval=$3
size=$(stat -c %s "$file")
chunks=$(( (size + chunk - 1) / chunk ))
i=0
while [ "$i" -lt "$chunks" ]; do
  dd if="$file" bs="$chunk" skip="$i" count=1 status=none
  i=$((i + 1))
  if [ "$i" -lt "$chunks" ]; then sleep "$interval"; fi
done
exit 0
EOF
  # receive DIR: stores one upload, named after the client's port.
  cat >"$NET_TMP/receive.sh" <<'EOF'
exec cat >"$1/from-${SOCAT_PEERPORT:-unknown}"
EOF
}

# make_data FILE KIB: random content, so a corrupted byte changes the hash.
make_data() { head -c "$(($2 * 1024))" /dev/urandom >"$1"; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# socat address of a listener / a connection for a family.
listen_addr() { if [[ $1 == 4 ]]; then echo "TCP4-LISTEN:$2,reuseaddr,fork"; else echo "TCP6-LISTEN:$2,reuseaddr,fork,ipv6only=1"; fi; }
connect_addr() { if [[ $1 == 4 ]]; then echo "TCP4:$2:$3"; else echo "TCP6:[$2]:$3"; fi; }

port_listening() { ns_exec "$1" ss -Hltn "sport = :$2" | grep -q .; }

# The servers' programs get the socket itself as stdin and stdout (EXEC
# with nofork): with socat relaying through a pipe instead, the child's exit
# can end the relay before the pipe is drained, and a download loses its
# tail (socat_sigchild sets closing at once; seen as a rare sha256 mismatch).

# upload_server NS FAM PORT: every connection's bytes go to a file in
# $NET_TMP/up-PORT/from-<client port>.
upload_server() {
  local ns=$1 fam=$2 port=$3 dir="$NET_TMP/up-$3"
  mkdir -p "$dir"
  bg_start "upload-server-$port" ip netns exec "$ns" socat "$(listen_addr "$fam" "$port")" "EXEC:bash $NET_TMP/receive.sh $dir,nofork"
  wait_until 5 port_listening "$ns" "$port" || die "upload server on port $port did not start"
}

# upload_start NAME NS FAM DST PORT FILE [CHUNK_BYTES INTERVAL_S]: a client
# that sends FILE slowly (default 16 KiB every 40 ms) and closes.
upload_start() {
  local name=$1 ns=$2 fam=$3 dst=$4 port=$5 file=$6 chunk=${7:-16384} interval=${8:-0.04}
  bg_start "$name" ip netns exec "$ns" bash -c \
    "bash '$NET_TMP/slowcat.sh' '$file' $chunk $interval | socat -u - '$(connect_addr "$fam" "$dst" "$port")'"
}

# upload_received_shas PORT: sha256 of every complete upload, sorted.
upload_received_shas() {
  local f
  for f in "$NET_TMP/up-$1"/from-*; do [[ -e $f ]] && sha_of "$f"; done | sort
}

# upload_wait PORT COUNT BYTES TIMEOUT: until COUNT uploads of BYTES arrived.
uploads_complete() {
  local dir="$NET_TMP/up-$1" count=$2 bytes=$3 n=0 f
  for f in "$dir"/from-*; do [[ -e $f ]] && (( $(stat -c %s "$f") == bytes )) && n=$((n + 1)); done
  (( n >= count ))
}
upload_wait() { wait_until "$4" uploads_complete "$1" "$2" "$3"; }

# download_server NS FAM PORT FILE [CHUNK_BYTES INTERVAL_S]: each connection
# gets FILE, sent slowly; the client sends nothing but ACKs.
download_server() {
  local ns=$1 fam=$2 port=$3 file=$4 chunk=${5:-16384} interval=${6:-0.04}
  bg_start "download-server-$port" ip netns exec "$ns" socat "$(listen_addr "$fam" "$port")" \
    "EXEC:bash $NET_TMP/slowcat.sh $file $chunk $interval,nofork"
  wait_until 5 port_listening "$ns" "$port" || die "download server on port $port did not start"
}

# download_start NAME NS FAM DST PORT OUTFILE
download_start() {
  local name=$1 ns=$2 fam=$3 dst=$4 port=$5 out=$6
  bg_start "$name" ip netns exec "$ns" socat -u "$(connect_addr "$fam" "$dst" "$port")" "OPEN:$out,creat,trunc"
}

# capture_start NAME NS IFACE FILTER...: tcpdump of whole packets into
# $NET_TMP/NAME.pcap, from when it is listening; capture_stop NAME ends it.
capture_start() {
  local name=$1 ns=$2 iface=$3; shift 3
  command -v tcpdump >/dev/null || die "tcpdump is not installed"
  # A big buffer: GSO packets of 64 KiB fill the default 2 MiB one quickly.
  bg_start "$name" ip netns exec "$ns" tcpdump -i "$iface" -s 0 -B 32768 --immediate-mode -U -w "$NET_TMP/$name.pcap" "$@"
  wait_until 5 grep -q listening "${BG_ERR[$name]}" || { show_file "tcpdump" "${BG_ERR[$name]}"; die "tcpdump did not start"; }
}
# (tcpdump drops what it has not read yet when it is stopped: wait until the
# file stops growing first.)
capture_size() { stat -c %s "$NET_TMP/$1.pcap" 2>/dev/null || echo 0; }
capture_settled() {
  local before; before=$(capture_size "$1"); sleep 0.5
  [[ $(capture_size "$1") == "$before" ]]
}
capture_stop() {
  wait_until 10 capture_settled "$1" || true
  bg_stop "$1"
  grep -E 'captured|dropped' "${BG_ERR[$1]}" | sed 's/^/  tcpdump: /' || true
}

# ------------------------------------------------------------ traceroute

# parse_traceroute < OUTPUT: "ttl addr" per answering address (sorted,
# unique per ttl) and "ttl *" for a ttl where nobody answered.
parse_traceroute() {
  awk 'NR > 1 && $1 ~ /^[0-9]+$/ {
         ttl = $1; n = 0; delete seen
         for (i = 2; i <= NF; i++) {
           t = $i
           if (t ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ || (t ~ /^[0-9a-fA-F:]+$/ && t ~ /:.*:/)) {
             if (!(t in seen)) { seen[t] = 1; print ttl, t; n++ }
           }
         }
         if (n == 0) print ttl, "*"
       }' | sort -k1,1n -k2,2 -u
}

# traceroute_hops NS FAM DST PORT OUTFILE: runs traceroute -T (3 probes per
# ttl) from NS, keeps its raw output in OUTFILE.raw, parsed hops in OUTFILE.
traceroute_hops() {
  local ns=$1 fam=$2 dst=$3 port=$4 out=$5
  ns_exec "$ns" traceroute -"$fam" -T -n -p "$port" -q 3 -m 16 "$dst" >"$out.raw" 2>&1 || true
  parse_traceroute <"$out.raw" >"$out"
}

# ------------------------------------------------------------ nfqtrace

# nfqtrace_rules NS: every line of the namespace's packet-filter rules that
# looks like nfqtrace's (its chains or tables, any queue rule).
nfqtrace_rules() {
  local ns=$1
  {
    ns_exec "$ns" iptables-save 2>&1
    ns_exec "$ns" ip6tables-save 2>&1
    if command -v nft >/dev/null; then ns_exec "$ns" nft list ruleset 2>&1; fi
  } | grep -i -E 'nfqtrace|queue' || true
}
nfqtrace_rules_present() { [[ -n $(nfqtrace_rules "$1") ]]; }
no_nfqtrace_rules() {
  local left; left=$(nfqtrace_rules "$1")
  [[ -z $left ]] && return 0
  echo "rules left in $1:"; echo "$left" | sed 's/^/    /'
  return 1
}

# out_rule_packets NS PORT queue|copy: the connections' packets from source
# port PORT that nfqtrace's outgoing rules queued, or copied to the log, so
# far: both families, from the rules' counters (the xtables back end, which
# counts every rule).
out_rule_packets() {
  local ns=$1 port=$2 target=NFQUEUE save
  [[ $3 == copy ]] && target="NFLOG --nflog-prefix nfqtrace-out"
  for save in iptables-save ip6tables-save; do
    ns_exec "$ns" "$save" -c -t mangle 2>/dev/null |
      grep -F -- "-OUT " | grep -E -- "--sport $port( |$)" | grep -F -- "-j $target" || true
  done | sed -E 's/^\[([0-9]+):.*/\1/' | awk '{ n += $1 } END { print n + 0 }'
}

# nfqtrace_start NAME NS BIN ARGS...: starts nfqtrace and waits until its
# rules are in place, so that the connections started next are seen from
# their first packet. Its pid is nfqtrace's own (signals reach it directly);
# nfqtrace_wait bounds its run time.
nfqtrace_start() {
  local name=$1 ns=$2 bin=$3; shift 3
  bg_start "$name" ip netns exec "$ns" "$bin" "$@"
  log "started: nfqtrace $* (in ${ns#"$NET_PREFIX"}, pid ${BG_PID[$name]})"
  if ! wait_until 5 nfqtrace_rules_present "$ns"; then
    bg_running "$name" && echo "  nfqtrace runs, but no rule of it appeared within 5 s" ||
      echo "  nfqtrace exited before its rules appeared"
    show_file "nfqtrace stderr" "${BG_ERR[$name]}" 30
    return 1
  fi
  return 0
}

# nfqtrace_wait NAME [TIMEOUT_S=30]: its exit status (124: killed, too slow).
nfqtrace_wait() { bg_wait "$1" "${2:-30}"; }

# check_nfqtrace_exit NAME [TIMEOUT_S]: check that it ends by itself with 0.
check_nfqtrace_exit() {
  local name=$1 rc=0
  nfqtrace_wait "$name" "${2:-30}" || rc=$?
  if (( rc == 124 )); then
    echo "  nfqtrace did not end within ${2:-30} s (killed)"
  fi
  if (( rc != 0 )); then
    show_file "nfqtrace stderr" "${BG_ERR[$name]}" 40
    show_file "nfqtrace stdout" "${BG_OUT[$name]}" 40
  fi
  check "nfqtrace exits 0 (exit status $rc)" test "$rc" -eq 0
}

# require DESCRIPTION CMD...: like check, but ends the test when it fails
# (nothing after it could mean anything).
require() {
  local before=$NET_CHECKS_FAILED
  check "$@"
  (( NET_CHECKS_FAILED == before )) || net_finish
}

# json_true JSON FILTER: FILTER (jq) is true for JSON.
json_true() { jq -e "$2" <<<"$1" >/dev/null 2>&1; }

# nfqtrace_binary_ok PATH: the binary the test was given exists.
nfqtrace_binary_ok() {
  [[ -n ${1:-} && -x $1 ]] && return 0
  echo "ERROR: nfqtrace binary '${1:-}' not found or not executable (usage: bash $0 /path/to/nfqtrace)"
  return 1
}

# trace_records FILE: the "trace" records of a JSON Lines output (lines that
# are not JSON are skipped here; json_lines_valid reports them).
trace_records() { jq -R -c 'fromjson? | select(type == "object" and .type == "trace")' "$1"; }

# trace_hops JSON: "ttl addr" / "ttl *" lines of one trace record, same
# shape as parse_traceroute.
trace_hops() {
  jq -r '.hops[] | .ttl as $t
         | if (.replies | length) == 0 then "\($t) *"
           else (.replies | map(.addr) | unique[] | "\($t) \(.)") end' <<<"$1" |
    sort -k1,1n -k2,2 -u
}

# same_hops WHAT EXPECTED_FILE ACTUAL_FILE: equal, or prints both side by side.
same_hops() {
  local what=$1 want=$2 got=$3
  if cmp -s "$want" "$got"; then return 0; fi
  echo "  $what differ (left: $(basename "$want"), right: $(basename "$got")):"
  diff -y -W 80 "$want" "$got" | sed 's/^/    /' || true
  return 1
}

# json_lines_valid FILE: FILE is non-empty JSON Lines, one object a line.
json_lines_valid() {
  [[ -s $1 ]] || { echo "  no output"; return 1; }
  local bad
  bad=$(jq -R 'fromjson? // "BAD" | if type == "object" then empty else . end' "$1" 2>&1 | head -3)
  [[ -z $bad ]] && return 0
  echo "  lines that are not JSON objects: $bad"; return 1
}

# side_by_side REF_FILE GOT_FILE: both hop lists, for the log.
side_by_side() {
  printf '    %-32s %s\n' "traceroute -T" "nfqtrace"
  paste -d'|' "$1" "$2" | awk -F'|' '{ printf "    %-32s %s\n", $1, $2 }'
}

# show_nfq_output FILE: nfqtrace's JSON Lines, one short line per record.
show_nfq_output() {
  printf -- '--- nfqtrace output (%s)\n' "$1"
  [[ -s $1 ]] || { echo "    (empty)"; return 0; }
  jq -R -r '(fromjson? // null) as $j | if $j == null then "    RAW " + .
    elif $j.type == "hop" then "    hop   \($j.flow.sport) round \($j.round) ttl \($j.ttl) \($j.addr) \($j.rtt_ms) ms"
    elif $j.type == "trace" then "    trace \($j.flow.src):\($j.flow.sport) -> \($j.flow.dst):\($j.flow.dport) round \($j.round) mode \($j.mode) reached \($j.reached) reason \($j.reason) hops: "
      + ([$j.hops[]? | "\(.ttl):" + (if (.replies | length) == 0 then "*" else ([.replies[].addr] | unique | join(",")) end)] | join(" "))
    else "    other " + . end' "$1" | sed -n '1,80p'   # sed reads all: no SIGPIPE under pipefail
}

# check_trace LABEL TRACE_RECORD REFERENCE_HOPS_FILE MODE: the trace equals
# traceroute -T hop by hop, reached the peer, ran in MODE. Leaves the trace's
# hop list in the file named by TRACE_HOPS_FILE.
check_trace() {
  local label=$1 rec=$2 ref=$3 mode=$4 got
  got=$(mktemp "$NET_TMP/hops.XXXXXX")
  # shellcheck disable=SC2034  # read by the calling test
  TRACE_HOPS_FILE=$got
  trace_hops "$rec" >"$got"
  side_by_side "$ref" "$got"
  check "$label: hops equal traceroute -T" same_hops "hop lists" "$ref" "$got"
  check "$label: reached the peer (reached true, reason reached; got $(jq -c '[.reached, .reason]' <<<"$rec"))" \
    json_true "$rec" '.reached == true and .reason == "reached"'
  check "$label: mode $mode" json_true "$rec" ".mode == \"$mode\""
  check "$label: hops listed by ttl from 1 without holes" \
    json_true "$rec" '[.hops[].ttl] == [range(1; (.hops | length) + 1)]'
}

# check_hop_lines OUTPUT_FILE: the live "hop" lines and the replies in the
# "trace" records are the same, flow by flow (one line per reply).
hop_lines_match_traces() {
  local out=$1 a b
  # A late reply (a TTL taken for silent, answered after its round ended)
  # is a hop line only: its trace was written before it came.
  a=$(jq -R -r 'fromjson? | select(type == "object" and .type == "hop" and .late != true)
                | "\(.flow.sport) \(.round) \(.ttl) \(.addr)"' "$out" | sort)
  # Hops taken over from another trace (--stop-set) were that trace's replies.
  b=$(trace_records "$out" | jq -r '.flow.sport as $s | .round as $r | .hops[]
             | select(.inferred_from == null) | .ttl as $t
             | .replies[] | "\($s) \($r) \($t) \(.addr)"' | sort)
  [[ $a == "$b" ]] && return 0
  echo "  hop lines vs trace replies differ (sport round ttl addr):"
  diff <(echo "$a") <(echo "$b") | sed 's/^/    /' | head -20
  return 1
}

# parse_traceroute_rtts < OUTPUT: "ttl rtt_ms" for every answered probe.
parse_traceroute_rtts() {
  awk 'NR > 1 && $1 ~ /^[0-9]+$/ {
         for (i = 2; i < NF; i++) if ($(i + 1) == "ms" && $i ~ /^[0-9.]+$/) print $1, $i
       }'
}

# trace_rtts JSON: "ttl rtt_ms" for every reply of one trace record.
trace_rtts() { jq -r '.hops[] | .ttl as $t | .replies[] | "\($t) \(.rtt_ms)"' <<<"$1"; }

# rtts_at_least RTT_LINES_FILE TTL_FROM TTL_TO MIN_MS: every RTT of those
# ttls is >= MIN_MS, and there is at least one.
rtts_at_least() {
  awk -v a="$2" -v b="$3" -v min="$4" '$1 >= a && $1 <= b { n++; if ($2 + 0 < min) { bad++; print "    ttl " $1 ": " $2 " ms < " min " ms" } }
       END { if (n == 0) print "    no RTT for ttl " a ".." b; exit (n == 0 || bad > 0) }' "$1"
}

# rtts_below RTT_LINES_FILE TTL_FROM TTL_TO MAX_MS: every RTT there < MAX_MS.
rtts_below() {
  awk -v a="$2" -v b="$3" -v max="$4" '$1 >= a && $1 <= b { n++; if ($2 + 0 >= max) { bad++; print "    ttl " $1 ": " $2 " ms >= " max " ms" } }
       END { if (n == 0) print "    no RTT for ttl " a ".." b; exit (n == 0 || bad > 0) }' "$1"
}

# ------------------------------------------------------------ scenarios

# traced_transfer KIND NAME FAM PORT KIB TRACER_NS NFQ ARGS...: the usual
# test body. Starts a KIND (upload: client sends; download: server sends)
# server on PORT, starts nfqtrace NAME in TRACER_NS with ARGS and waits for
# its rules, then runs one transfer of KIB KiB (about 2.6 s per MiB), and
# checks: nfqtrace exits 0 by itself, no rule is left, the data arrived with
# the same sha256. nfqtrace's output is then in ${BG_OUT[NAME]}.
traced_transfer() {
  local kind=$1 name=$2 fam=$3 port=$4 kib=$5 tracer=$6 nfq=$7; shift 7
  local cli srv dst data="$NET_TMP/$name-data.bin" got="$NET_TMP/$name-got.bin"
  cli=$(net_client) srv=$(net_server) dst=$(net_server_addr "$fam")
  make_data "$data" "$kib"
  if [[ $kind == upload ]]; then upload_server "$srv" "$fam" "$port"; else download_server "$srv" "$fam" "$port" "$data"; fi
  require "nfqtrace starts and installs its rules" nfqtrace_start "$name" "$tracer" "$nfq" "$@"
  if [[ $kind == upload ]]; then
    upload_start "$name-xfer" "$cli" "$fam" "$dst" "$port" "$data"
  else
    download_start "$name-xfer" "$cli" "$fam" "$dst" "$port" "$got"
  fi
  check_nfqtrace_exit "$name" 30
  check "no nfqtrace rule left in ${tracer#"$NET_PREFIX"}" no_nfqtrace_rules "$tracer"
  check "$kind client exits 0" bg_wait "$name-xfer" 30
  if [[ $kind == upload ]]; then
    check "upload arrived complete" upload_wait "$port" 1 $((kib * 1024)) 10
    check "upload sha256 matches end to end" test "$(upload_received_shas "$port")" = "$(sha_of "$data")"
  else
    check "download sha256 matches end to end" test "$(sha_of "$got" 2>/dev/null)" = "$(sha_of "$data")"
  fi
}

# reference_trace FROM(client|server) FAM PORT OUTFILE: traceroute -T from
# that end to the other, parsed into OUTFILE, and checked against the
# topology (if traceroute itself disagrees, the harness is broken).
reference_trace() {
  local from=$1 fam=$2 port=$3 out=$4 ns dst
  if [[ $from == client ]]; then
    ns=$(net_client) dst=$(net_server_addr "$fam"); net_expected_forward "$fam" >"$out.want"
  else
    ns=$(net_server) dst=$(net_client_addr "$fam"); net_expected_return "$fam" >"$out.want"
  fi
  traceroute_hops "$ns" "$fam" "$dst" "$port" "$out"
  show_file "traceroute -T from the $from" "$out.raw"
  check "traceroute -T from the $from sees the topology (harness sanity)" same_hops "hops" "$out.want" "$out"
}

# check_one_trace NAME LABEL REF_FILE MODE SRC DST [DPORT] [SPORT]: NAME's
# output holds exactly one trace, of that flow, equal to REF_FILE.
check_one_trace() {
  local name=$1 label=$2 ref=$3 mode=$4 src=$5 dst=$6 dport=${7:-} sport=${8:-}
  local out=${BG_OUT[$name]} rec cond
  show_nfq_output "$out"
  check "output is JSON Lines" json_lines_valid "$out"
  check "exactly one trace record (got $(trace_records "$out" | wc -l))" test "$(trace_records "$out" | wc -l)" -eq 1
  rec=$(trace_records "$out" | sed -n 1p)
  [[ -n $rec ]] || return 0
  check_trace "$label" "$rec" "$ref" "$mode"
  cond=".flow.src == \"$src\" and .flow.dst == \"$dst\""
  [[ -n $dport ]] && cond+=" and .flow.dport == $dport"
  [[ -n $sport ]] && cond+=" and .flow.sport == $sport"
  check "$label: flow is $src${sport:+:$sport} -> $dst${dport:+:$dport} (got $(jq -c .flow <<<"$rec"))" json_true "$rec" "$cond"
  check "$label: hop lines are the trace's replies" hop_lines_match_traces "$out"
}

# forward_upload_test FAM ROUTERS NFQ: the whole of test_ipv4_forward.sh and
# test_ipv6_forward.sh. nfqtrace on the client (--dport, dup mode) traces a
# 1.5 MiB upload across ROUTERS routers; its trace must equal traceroute -T
# from the client hop by hop and reach the server.
forward_upload_test() {
  local fam=$1 routers=$2 nfq=$3 port=5001 chain=client i
  for ((i = 1; i <= routers; i++)); do chain+=" — r$i"; done
  section "network: $chain — server (IPv$fam)"
  net_build "$routers"
  net_icmp_ratelimit_off   # nfqtrace and traceroute both probe every router
  net_describe "$fam"

  section "nfqtrace on the client (--dport $port), during a 1.5 MiB upload"
  traced_transfer upload nfq "$fam" $port 1536 "$(net_client)" "$nfq" \
    --dport $port --mode dup --count 1 --format json

  section "reference and comparison"
  reference_trace client "$fam" $port "$NET_TMP/tr"
  check_one_trace nfq "IPv$fam client trace" "$NET_TMP/tr" dup \
    "$(net_client_addr "$fam")" "$(net_server_addr "$fam")" $port
}

# ------------------------------------------------------------ cooperating pair
# nfqtrace-server and nfqtrace-client (tests/netns/test_coop_*.sh). The
# client prints hop and trace objects with "direction":"forward"|"reverse".

COOP_SERVER=""   # path of nfqtrace-server (coop_binaries)
COOP_CLIENT=""   # path of nfqtrace-client

# coop_binaries NFQ: the server and client built next to NFQ; skips the test
# (exit 77) when they are not there (e.g. run with mock_nfqtrace.sh).
coop_binaries() {
  local dir; dir=$(dirname "${1:-.}")
  COOP_SERVER="$dir/nfqtrace-server" COOP_CLIENT="$dir/nfqtrace-client"
  if [[ ! -x $COOP_SERVER || ! -x $COOP_CLIENT ]]; then
    echo "SKIP: $NET_TEST needs nfqtrace-server and nfqtrace-client next to '${1:-}'"; exit 77
  fi
  coop_write_scripts
}

# coop_server_start NAME NS ARGS...: starts nfqtrace-server and waits until
# it listens on --port and its rules are in place.
coop_server_start() {
  local name=$1 ns=$2 port; shift 2
  port=$(awk '{ for (i = 1; i < NF; i++) if ($i == "--port") print $(i + 1) }' <<<"$*")
  bg_start "$name" ip netns exec "$ns" "$COOP_SERVER" "$@"
  log "started: nfqtrace-server $* (in ${ns#"$NET_PREFIX"}, pid ${BG_PID[$name]})"
  if ! wait_until 5 nfqtrace_rules_present "$ns" || ! wait_until 5 port_listening "$ns" "$port"; then
    bg_running "$name" && echo "  nfqtrace-server runs, but its rules or listener did not appear within 5 s" ||
      echo "  nfqtrace-server exited early"
    show_file "nfqtrace-server stderr" "${BG_ERR[$name]}" 30
    return 1
  fi
  return 0
}

# coop_endpoint FAM ADDR PORT: what nfqtrace-client takes (a.b.c.d:P, [v6]:P).
coop_endpoint() { if [[ $1 == 4 ]]; then echo "$2:$3"; else echo "[$2]:$3"; fi; }

# coop_client_start NAME NS ARGS...: nfqtrace-client in the background.
coop_client_start() {
  local name=$1 ns=$2; shift 2
  bg_start "$name" ip netns exec "$ns" "$COOP_CLIENT" "$@"
  log "started: nfqtrace-client $* (in ${ns#"$NET_PREFIX"}, pid ${BG_PID[$name]})"
}

# coop_records FILE TYPE DIRECTION: the TYPE objects (hop, trace) of that
# direction in a client's JSON Lines output, one a line.
coop_records() {
  jq -R -c --arg t "$2" --arg d "$3" \
    'fromjson? | select(type == "object" and .type == $t and .direction == $d)' "$1"
}

# coop_directions_ok FILE: every hop and trace object has a direction
# (forward or reverse), there is exactly one trace per direction, and every
# hop has its trace's flow and is one of its replies (hop lines and replies
# are the same, direction by direction).
coop_directions_ok() {
  local out=$1 d bad n a b ok=0
  bad=$(jq -R -c 'fromjson? | select(type == "object" and (.type == "hop" or .type == "trace"))
                  | select(.direction != "forward" and .direction != "reverse")' "$out" | head -3)
  [[ -z $bad ]] || { echo "  objects without a valid direction: $bad"; ok=1; }
  for d in forward reverse; do
    n=$(coop_records "$out" trace "$d" | wc -l)
    (( n == 1 )) || { echo "  $d: $n trace objects, expected 1"; ok=1; continue; }
    a=$(coop_records "$out" hop "$d" | jq -r '"\(.flow | tojson) \(.round) \(.ttl) \(.addr)"' | sort)
    b=$(coop_records "$out" trace "$d" | jq -r '(.flow | tojson) as $f | .round as $r | .hops[] | .ttl as $t
              | .replies[] | "\($f) \($r) \($t) \(.addr)"' | sort)
    if [[ $a != "$b" ]]; then
      echo "  $d: hop lines (flow round ttl addr) differ from the $d trace's replies:"
      diff <(echo "$a") <(echo "$b") | sed 's/^/    /' | head -20
      ok=1
    fi
  done
  return $ok
}

# show_coop_output FILE: a client's JSON Lines, one short line per object.
show_coop_output() {
  printf -- '--- nfqtrace-client output (%s)\n' "$1"
  [[ -s $1 ]] || { echo "    (empty)"; return 0; }
  jq -R -r '(fromjson? // null) as $j | if $j == null then "    RAW " + .
    elif $j.type == "hop" then "    \($j.direction) hop   \($j.flow.src):\($j.flow.sport) round \($j.round) ttl \($j.ttl) \($j.addr) \($j.rtt_ms) ms"
    elif $j.type == "trace" then "    \($j.direction) trace \($j.flow.src):\($j.flow.sport) -> \($j.flow.dst):\($j.flow.dport) mode \($j.mode) reached \($j.reached) reason \($j.reason) hops: "
      + ([$j.hops[]? | "\(.ttl):" + (if (.replies | length) == 0 then "*" else ([.replies[].addr] | unique | join(",")) end)] | join(" "))
    else "    other " + . end' "$1" | sed -n '1,80p'   # sed reads all: no SIGPIPE under pipefail
}

# hops_disjoint A B: the routers (every hop but the last) of two hop lists
# ("ttl addr") have no address in common.
hops_disjoint() {
  local common
  common=$(comm -12 <(head -n -1 "$1" | cut -d' ' -f2 | grep -v '^\*$' | sort -u) \
                    <(head -n -1 "$2" | cut -d' ' -f2 | grep -v '^\*$' | sort -u))
  [[ -z $common ]] && return 0
  echo "  in both: $common"; return 1
}

# vm_rss_kb PID: resident set size of a process, in KiB.
vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# one_line_reason FILE: FILE is exactly one non-empty line.
one_line_reason() {
  [[ $(wc -l <"$1") -eq 1 && -n $(head -c1 "$1") ]] && return 0
  echo "  expected one line, got:"; sed 's/^/    /' "$1" | head -5; return 1
}

# raw_exchange NS HOST PORT INFILE OUTFILE [WAIT_S=2]: a raw TCP connection
# from NS (bash /dev/tcp): sends INFILE, keeps its own side open and reads
# until the server closes or WAIT_S pass. Returns 0 when the server closed
# the connection (EOF or reset), 124 when it was still open after WAIT_S,
# 3 when the connection could not be made.
raw_exchange() {
  local ns=$1 host=$2 port=$3 in=$4 out=$5 wait_s=${6:-2}
  ns_exec "$ns" bash "$NET_TMP/raw_exchange.sh" "$host" "$port" "$in" "$out" "$wait_s"
}

# Helpers for raw connections, written when first needed.
coop_write_scripts() {
  cat >"$NET_TMP/raw_exchange.sh" <<'EOS'
# raw_exchange.sh HOST PORT INFILE OUTFILE WAIT_S
trap '' PIPE
exec 3<>"/dev/tcp/$1/$2" || exit 3
cat "$3" >&3 2>/dev/null
timeout "$5" cat <&3 >"$4" 2>/dev/null; rc=$?
exec 3>&-
(( rc == 124 )) && exit 124
exit 0
EOS
  # hold_idle.sh HOST PORT N STATEFILE GOFILE RESULTFILE: opens N connections
  # at once and sends nothing; writes "opened K" to STATEFILE; when GOFILE
  # exists, reads what each connection got: one line per connection,
  # "<index> <EOF|OPEN> <first line>" into RESULTFILE, then "read" to
  # STATEFILE and exits (closing them all).
  cat >"$NET_TMP/hold_idle.sh" <<'EOS'
trap '' PIPE
host=$1 port=$2 n=$3 state=$4 go=$5 result=$6
fds=()
for ((i = 0; i < n; i++)); do
  exec {fd}<>"/dev/tcp/$host/$port" || break
  fds+=("$fd")
done
echo "opened ${#fds[@]}" >"$state"
while [[ ! -e $go ]]; do sleep 0.05; done
: >"$result"
for i in "${!fds[@]}"; do
  fd=${fds[$i]} line="" st=OPEN
  IFS= read -r -t 1 line <&"$fd"
  IFS= read -r -t 0.2 rest <&"$fd"; rc=$?
  # 1 (or any status <= 128): end of file; > 128: timed out, still open
  (( rc > 0 && rc <= 128 )) && st=EOF
  echo "$i $st $line" >>"$result"
done
echo "read" >>"$state"
EOS
  # non_reader.sh HOST PORT SECONDS STATEFILE: sends a hello, then a filler
  # line every 0.2 s for up to SECONDS, and never reads a byte. Writes
  # "closed" to STATEFILE when a write fails (the server dropped it).
  cat >"$NET_TMP/non_reader.sh" <<'EOS'
trap '' PIPE
host=$1 port=$2 secs=$3 state=$4
exec 3<>"/dev/tcp/$host/$port" || exit 3
printf '%s\n' '{"type":"hello","version":1,"params":{}}' >&3
echo "hello sent" >"$state"
end=$(( $(date +%s) + secs )) n=0
while (( $(date +%s) < end )); do
  n=$((n + 1))
  if ! printf '{"type":"filler","n":%d,"pad":"...."}\n' "$n" >&3 2>/dev/null; then
    echo "closed after $n lines" >>"$state"; exit 0
  fi
  sleep 0.2
done
echo "still open" >>"$state"
EOS
}

# no_queue_rules NS QUEUE: no rule of the tracer on that queue id is left in
# NS (other tracers' rules may be there: several run in one namespace).
no_queue_rules() {
  local left
  left=$(nfqtrace_rules "$1" | grep -E -- "NFQTRACE-Q$2-|queue-num $2( |\$)|queue num $2( |\$)" || true)
  [[ -z $left ]] && return 0
  echo "rules of queue $2 left in $1:"; echo "$left" | sed 's/^/    /'
  return 1
}

# coop_check_traces NAME FAM PORT FWD_MODE REV_MODE LABEL: the JSON output
# of the finished client job NAME (FAM, server port PORT): one trace per
# direction, hops and flows consistent; the forward trace equals traceroute
# -T from the client, the reverse one (the server's flow) traceroute -T from
# the server to the client; modes as given; the two share no router when the
# network is asymmetric. Sets COOP_CLIENT_PORT (0 when there was no trace).
COOP_CLIENT_PORT=0
coop_check_traces() {
  local name=$1 fam=$2 port=$3 fmode=$4 rmode=$5 label=$6
  local out=${BG_OUT[$1]} c_addr s_addr fwd_rec rev_rec cport fwd_hops rev_hops
  c_addr=$(net_client_addr "$fam") s_addr=$(net_server_addr "$fam")
  COOP_CLIENT_PORT=0
  show_coop_output "$out"
  check "$label: output is JSON Lines" json_lines_valid "$out"
  check "$label: one trace per direction, every hop's direction and flow match its trace" \
    coop_directions_ok "$out"
  fwd_rec=$(coop_records "$out" trace forward | sed -n 1p)
  rev_rec=$(coop_records "$out" trace reverse | sed -n 1p)
  if [[ -z $fwd_rec || -z $rev_rec ]]; then check "$label: both traces present" false; return 0; fi
  cport=$(jq -r .flow.sport <<<"$fwd_rec")
  COOP_CLIENT_PORT=$cport
  echo "  client port: $cport"
  reference_trace client "$fam" "$port" "$NET_TMP/tr-fwd-$name"
  reference_trace server "$fam" "$cport" "$NET_TMP/tr-rev-$name"
  check_trace "$label forward" "$fwd_rec" "$NET_TMP/tr-fwd-$name" "$fmode"
  fwd_hops=$TRACE_HOPS_FILE
  check "$label forward: flow is $c_addr:$cport -> $s_addr:$port (got $(jq -c .flow <<<"$fwd_rec"))" \
    json_true "$fwd_rec" ".flow.src == \"$c_addr\" and .flow.dst == \"$s_addr\" and .flow.dport == $port"
  check_trace "$label reverse" "$rev_rec" "$NET_TMP/tr-rev-$name" "$rmode"
  rev_hops=$TRACE_HOPS_FILE
  check "$label reverse: flow is the server's, $s_addr:$port -> $c_addr:$cport (got $(jq -c .flow <<<"$rev_rec"))" \
    json_true "$rev_rec" ".flow.src == \"$s_addr\" and .flow.sport == $port and .flow.dst == \"$c_addr\" and .flow.dport == $cport"
  if (( NET_RET_ROUTERS > 0 )); then
    check "$label: forward and reverse traces share no router address" hops_disjoint "$fwd_hops" "$rev_hops"
  fi
}

# ------------------------------------------------------------ issue 10 tests
# (test_middleboxes, test_nat, test_route_change, test_trigger_retransmit)

# needs_real_nfqtrace NFQ WHAT: skips the test (exit 77) when NFQ is the mock,
# which reports hops only, not WHAT.
needs_real_nfqtrace() {
  [[ $(basename "$1") != mock_nfqtrace.sh ]] && return 0
  echo "SKIP: $NET_TEST checks $2, which mock_nfqtrace.sh does not report"; exit 77
}
