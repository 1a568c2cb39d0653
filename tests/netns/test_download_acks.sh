#!/usr/bin/env bash
# A download: the client sends no data, only ACKs. nfqtrace on the client
# (--dport) has nothing but those ACKs to build probes from, and its trace
# must still equal traceroute -T and reach the server.
# Usage: bash test_download_acks.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init download_acks
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001

section "network: client — r1 — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe $FAM

section "nfqtrace on the client (--dport $PORT), during a 2 MiB download"
traced_transfer download nfq $FAM $PORT 2048 "$(net_client)" "$NFQ" \
  --dport $PORT --mode dup --count 1 --format json

section "reference and comparison"
reference_trace client $FAM $PORT "$NET_TMP/tr"
check_one_trace nfq "ACK-only client trace" "$NET_TMP/tr" dup \
  "$(net_client_addr $FAM)" "$(net_server_addr $FAM)" $PORT
net_finish
