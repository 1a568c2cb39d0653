#!/usr/bin/env bash
# nfqtrace demo: a four-router network in network namespaces (r3 keeps
# quiet: it sends no ICMP time-exceeded; the way back goes through two other
# routers), a real TCP upload across it, nfqtrace tracing that live
# connection from the client, traceroute -T of the same path for comparison,
# and nfqtrace-server with nfqtrace-client showing both directions of one
# connection. Needs root; everything is removed at exit.
#
# Usage: sudo bash demo/run.sh [path/to/nfqtrace]   (default build/nfqtrace)
set -euo pipefail
DEMO_DIR=$(cd "$(dirname "$0")" && pwd)
source "$DEMO_DIR/../tests/netns/lib.sh"

NFQ=${1:-build/nfqtrace}
if [[ ! -x $NFQ ]]; then
  echo "nfqtrace not found at '$NFQ'."
  echo "Build it:  cmake -S . -B build && cmake --build build -j2"
  exit 1
fi
NFQ=$(cd "$(dirname "$NFQ")" && pwd)/$(basename "$NFQ")
NET_QUIET=1
net_init demo

if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B="" G="" R="" D="" N=""; fi
step() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
ok()   { printf '%s✔ %s%s\n' "$G" "$*" "$N"; }
bad()  { printf '%s✘ %s%s\n' "$R" "$*" "$N"; DEMO_FAILED=1; }
DEMO_FAILED=0
PORT=443 KIB=2048

step "1. The network"
net_build 4 2
net_silence "$(net_router 3)"
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr 4)
printf '  %-14s%-14s%-14s%-14s%-14s%s\n' client r1 r2 "r3 (silent)" r4 server
printf '  %-14s%-14s%-14s%-14s%-14s%s\n' "$(net_client_addr 4)" "$(link_addr 4 1 1 2)" \
  "$(link_addr 4 1 2 2)" "$(link_addr 4 1 3 2)" "$(link_addr 4 1 4 2)" "$DST"
echo "  ${D}one link between each two; a router answers from its address facing the client;"
echo "  r3 forwards but drops its own ICMP time-exceeded, so it shows as * * *;"
echo "  the server's packets come back another way: server — b1 — b2 — client${N}"

step "2. A real TCP connection: the client uploads $((KIB / 1024)) MiB to server:$PORT"
make_data "$NET_TMP/data.bin" $KIB
upload_server "$SRV" 4 $PORT
echo "  nfqtrace starts first, so it sees the connection from its first packet:"
echo "  ${D}\$ ip netns exec client nfqtrace --dport $PORT --count 1${N}"
nfqtrace_start nfq "$CLI" "$NFQ" --dport $PORT --count 1 --format text ||
  { bad "nfqtrace did not start"; exit 1; }
upload_start upload "$CLI" 4 "$DST" $PORT "$NET_TMP/data.bin"
echo "  upload running (about $((KIB * 26 / 10240)) s) ..."

step "3. nfqtrace, tracing the live connection from the client"
# Stream its output while it runs.
tail -n +1 -f --pid="${BG_PID[nfq]}" "${BG_OUT[nfq]}" | sed 's/^/  /'
rc=0; nfqtrace_wait nfq 30 || rc=$?
if (( rc == 0 )); then ok "nfqtrace exited 0"; else bad "nfqtrace exit status $rc"; show_file "nfqtrace stderr" "${BG_ERR[nfq]}" 20; fi
if no_nfqtrace_rules "$CLI" >/dev/null; then ok "its packet-filter rules are gone"; else bad "rules left behind"; nfqtrace_rules "$CLI"; fi

step "4. For comparison: traceroute -T -n -p $PORT $DST (from the client)"
ns_exec "$CLI" traceroute -T -n -p $PORT -q 3 "$DST" 2>&1 | sed 's/^/  /'

step "5. The data arrived intact"
if bg_wait upload 30 && upload_wait $PORT 1 $((KIB * 1024)) 10; then
  sent=$(sha_of "$NET_TMP/data.bin") got=$(upload_received_shas $PORT)
  echo "  sent     sha256 $sent"
  echo "  received sha256 $got"
  if [[ $sent == "$got" ]]; then ok "identical"; else bad "different"; fi
else
  bad "the upload did not complete"
fi

step "6. Both directions of one connection: nfqtrace-server and nfqtrace-client"
BIN_DIR=$(dirname "$NFQ")
echo "  ${D}server\$ nfqtrace-server --port 9000      client\$ nfqtrace-client $DST:9000${N}"
bg_start coop-server ip netns exec "$SRV" "$BIN_DIR/nfqtrace-server" --port 9000 --format json
if wait_until 5 nfqtrace_rules_present "$SRV"; then
  rc=0
  ns_exec "$CLI" timeout 30 "$BIN_DIR/nfqtrace-client" "$DST:9000" --output "dot=$NET_TMP/paths.dot" 2>&1 |
    sed 's/^/  /' || rc=$?
  if (( rc == 0 )); then ok "both paths traced: the way back is not the way there"; else bad "nfqtrace-client failed"; fi
  # The same two paths as a picture (--output dot=FILE), when Graphviz is here.
  PNG=${DEMO_PNG:-/tmp/nfqtrace-demo-paths.png}
  if command -v dot >/dev/null && [[ -s $NET_TMP/paths.dot ]] && dot -Tpng "$NET_TMP/paths.dot" -o "$PNG"; then
    ok "both directions drawn by Graphviz: $PNG (shared routers merged, the asymmetry in colour)"
  else
    echo "  (Graphviz not installed or no graph: no picture)"
  fi
  bg_signal coop-server INT
  bg_wait coop-server 10 >/dev/null 2>&1 || true
else
  bad "nfqtrace-server did not start"; show_file "nfqtrace-server stderr" "${BG_ERR[coop-server]}" 10
fi

step "Done"
echo "  namespaces and processes are cleaned up on exit."
exit "$DEMO_FAILED"
