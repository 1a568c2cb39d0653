#!/usr/bin/env bash
# IPv6 forward trace from the client (--dport, dup mode) of a live upload
# across four routers: the trace equals traceroute -T hop by hop and reaches
# the server; the upload arrives intact; nfqtrace exits 0 and leaves no rule.
# Usage: bash test_ipv6_forward.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init ipv6_forward
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=6 PORT=5001

section "network: client — r1 — r2 — r3 — r4 — server (IPv$FAM)"
net_build 4
net_icmp_ratelimit_off   # nfqtrace and traceroute both probe every router
net_describe $FAM

section "nfqtrace on the client (--dport $PORT), during a 1.5 MiB upload"
traced_transfer upload nfq $FAM $PORT 1536 "$(net_client)" "$NFQ" \
  --dport $PORT --mode dup --count 1 --format json

section "reference and comparison"
reference_trace client $FAM $PORT "$NET_TMP/tr"
check_one_trace nfq "IPv$FAM client trace" "$NET_TMP/tr" dup \
  "$(net_client_addr $FAM)" "$(net_server_addr $FAM)" $PORT
net_finish
