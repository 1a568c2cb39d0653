#!/usr/bin/env bash
# Asymmetric routing: client→server goes r1 r2 r3, server→client goes back
# through b1 b2. nfqtrace on the SERVER (--sport) traces the server's data
# of a download and must report the return path b1 b2 client, equal to
# traceroute -T run from the server to the client (not the forward path).
# Usage: bash test_asymmetric_server.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init asymmetric_server
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001

section "network: client — r1 — r2 — r3 — server, server — b1 — b2 — client"
net_build 3 2
net_icmp_ratelimit_off
net_describe $FAM

section "nfqtrace on the server (--sport $PORT), during a 1.5 MiB download"
traced_transfer download nfq $FAM $PORT 1536 "$(net_server)" "$NFQ" \
  --sport $PORT --mode dup --count 1 --format json

section "reference and comparison"
reference_trace client $FAM $PORT "$NET_TMP/tr-fwd"   # for contrast only
reference_trace server $FAM $PORT "$NET_TMP/tr-ret"
# routers_disjoint A B: no router (every hop but the last) is on both paths.
routers_disjoint() {
  [[ -z $(comm -12 <(head -n -1 "$1" | cut -d' ' -f2 | sort) <(head -n -1 "$2" | cut -d' ' -f2 | sort)) ]]
}
check "forward and return paths share no router (harness sanity)" \
  routers_disjoint "$NET_TMP/tr-fwd" "$NET_TMP/tr-ret"
check_one_trace nfq "server-side trace" "$NET_TMP/tr-ret" dup \
  "$(net_server_addr $FAM)" "$(net_client_addr $FAM)" "" $PORT
net_finish
