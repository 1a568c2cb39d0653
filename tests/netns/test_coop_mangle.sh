#!/usr/bin/env bash
# The cooperating pair in mangle mode (each side lowers the TTL of its own
# packets instead of sending copies), on the asymmetric network (forward
# r1 r2 r3, back b1 b2). Every trace must still equal traceroute -T:
#   * both ways mangle, default frequencies, IPv4 and IPv6
#   * the reverse trace with --server-mangle-freq 1 (every packet of the
#     server may be a probe; many of them are bare ACKs)
#   * the forward trace with --client-mangle-freq 1
#   * a server started with --allow-mangle false: a client asking for mangle
#     gets a dup reverse trace, still correct
#   * the server that allows mangle copies a dup client's packets (none of
#     them is queued) and queues those of a client in mangle mode: its rules'
#     counters
# Usage: bash test_coop_mangle.sh /path/to/nfqtrace (server and client are
# taken from the same directory)
source "$(dirname "$0")/lib.sh"
net_init coop_mangle
NFQ=${1:-}
coop_binaries "$NFQ"
PORT=7400 PORT_NOMANGLE=7401

section "network: client — r1 — r2 — r3 — server, server — b1 — b2 — client"
net_build 3 2
net_icmp_ratelimit_off
net_describe 4
CLI=$(net_client) SRV=$(net_server)

section "nfqtrace-server --port $PORT (mangle allowed), and --port $PORT_NOMANGLE --allow-mangle false --queue-id 1"
require "nfqtrace-server starts, listens and installs its rules" \
  coop_server_start srv "$SRV" --port $PORT --format json
require "a second nfqtrace-server (--allow-mangle false) starts too" \
  coop_server_start srv-nomangle "$SRV" --port $PORT_NOMANGLE --queue-id 1 --allow-mangle false --format json

# run NAME FAM PORT FWD_MODE REV_MODE CLIENT_ARGS...: one client, checked.
run() {
  local name=$1 fam=$2 port=$3 fmode=$4 rmode=$5 rc=0; shift 5
  section "$name: IPv$fam, client $*"
  coop_client_start "$name" "$CLI" "$(coop_endpoint "$fam" "$(net_server_addr "$fam")" "$port")" --format json "$@"
  bg_wait "$name" 30 || rc=$?
  show_file "client stderr" "${BG_ERR[$name]}" 5
  check "$name: client exits 0 (exit status $rc)" test "$rc" -eq 0
  check "$name: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
  coop_check_traces "$name" "$fam" "$port" "$fmode" "$rmode" "$name"
}

# Of PORT's server, the packets queued and copied so far.
queued() { out_rule_packets "$SRV" $PORT queue; }
copied() { out_rule_packets "$SRV" $PORT copy; }

q0=$(queued) c0=$(copied)
run dup4 4 $PORT dup dup
q1=$(queued) c1=$(copied)
check "dup4: the server queued none of its packets to the dup client ($((q1 - q0)))" test $((q1 - q0)) -eq 0
check "dup4: and copied some ($((c1 - c0)))" test $((c1 - c0)) -gt 0
run both4 4 $PORT mangle mangle --client-send-dups=false --server-send-dups=false
q2=$(queued)
check "both4: the server queued its packets to the client in mangle mode ($((q2 - q1)))" test $((q2 - q1)) -gt 0
run both6 6 $PORT mangle mangle --client-send-dups=false --server-send-dups=false
run rev-freq1 4 $PORT dup mangle --server-send-dups=false --server-mangle-freq 1
run fwd-freq1 4 $PORT mangle dup --client-send-dups=false --client-mangle-freq 1
run nomangle 4 $PORT_NOMANGLE dup dup --server-send-dups=false

section "SIGINT to both servers"
for s in srv srv-nomangle; do
  bg_signal "$s" INT
  rc=0; bg_wait "$s" 5 || rc=$?
  check "$s exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
done
check "no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
net_finish
