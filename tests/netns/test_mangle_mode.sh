#!/usr/bin/env bash
# Mangle mode (--mode mangle): nfqtrace lowers the TTL of the connection's
# own segments instead of sending copies. Over IPv4 and IPv6 the trace must
# still equal traceroute -T and reach the server, and the upload must still
# arrive intact (the expired segments are retransmitted by TCP).
# Usage: bash test_mangle_mode.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init mangle_mode
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"

section "network: client — r1 — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe 4

for fam in 4 6; do
  port=$((5000 + fam))
  section "IPv$fam: nfqtrace --mode mangle on the client (--dport $port), during a 1.5 MiB upload"
  traced_transfer upload "nfq$fam" $fam $port 1536 "$(net_client)" "$NFQ" \
    --dport $port --mode mangle --count 1 --format json
  section "IPv$fam: reference and comparison"
  reference_trace client $fam $port "$NET_TMP/tr$fam"
  check_one_trace "nfq$fam" "IPv$fam mangle trace" "$NET_TMP/tr$fam" mangle \
    "$(net_client_addr $fam)" "$(net_server_addr $fam)" $port
done
net_finish
