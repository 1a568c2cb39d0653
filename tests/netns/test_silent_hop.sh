#!/usr/bin/env bash
# A router that never sends ICMP time-exceeded (r2): over IPv4 and IPv6 the
# client's nfqtrace trace shows the same gap at ttl 2 as traceroute -T, the
# rest of the path hop by hop, and still reaches the server.
# Usage: bash test_silent_hop.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init silent_hop
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"

section "network: client — r1 — r2 (silent) — r3 — r4 — server"
net_build 4
net_silence "$(net_router 2)"
net_icmp_ratelimit_off
net_describe 4

# gap_at_ttl FILE TTL: the hop list has that ttl, and nobody answered there.
gap_at_ttl() { grep -qx "$2 \*" "$1"; }

for fam in 4 6; do
  port=$((5000 + fam))
  section "IPv$fam: nfqtrace on the client (--dport $port), during a 2 MiB upload"
  traced_transfer upload "nfq$fam" $fam $port 2048 "$(net_client)" "$NFQ" \
    --dport $port --mode dup --count 1 --format json --timeout 1
  section "IPv$fam: reference and comparison"
  reference_trace client $fam $port "$NET_TMP/tr$fam"
  check_one_trace "nfq$fam" "IPv$fam trace" "$NET_TMP/tr$fam" dup \
    "$(net_client_addr $fam)" "$(net_server_addr $fam)" $port
  check "IPv$fam: traceroute -T shows the gap at ttl 2" gap_at_ttl "$NET_TMP/tr$fam" 2
  check "IPv$fam: nfqtrace shows the gap at ttl 2" gap_at_ttl "$TRACE_HOPS_FILE" 2
done
net_finish
