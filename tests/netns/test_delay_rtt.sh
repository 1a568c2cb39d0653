#!/usr/bin/env bash
# RTTs: r2 holds every packet it forwards 40 ms (delayq), i.e. the link
# r2—r3 is 40 ms long each way. Every reply nfqtrace reports from r3, r4 and
# the server must show an RTT of at least 80 ms, those from r1 and r2 less
# than 40 ms; traceroute -T is held to the same bounds (harness sanity).
# Usage: bash test_delay_rtt.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init delay_rtt
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
net_helpers "$NFQ"   # delayq
FAM=4 PORT=5001 DELAY_MS=40

section "network: client — r1 — r2 =(${DELAY_MS} ms)= r3 — r4 — server"
net_build 4
net_delay "$(net_router 2)" $DELAY_MS
net_icmp_ratelimit_off
net_describe $FAM

section "nfqtrace on the client (--dport $PORT), during a 1.5 MiB upload"
traced_transfer upload nfq $FAM $PORT 1536 "$(net_client)" "$NFQ" \
  --dport $PORT --mode dup --count 1 --format json

section "reference and comparison"
reference_trace client $FAM $PORT "$NET_TMP/tr"
parse_traceroute_rtts <"$NET_TMP/tr.raw" >"$NET_TMP/tr.rtt"
check "traceroute: RTT of ttl 1-2 < $DELAY_MS ms (harness sanity)" rtts_below "$NET_TMP/tr.rtt" 1 2 $DELAY_MS
check "traceroute: RTT of ttl 3-5 >= $((2 * DELAY_MS)) ms (harness sanity)" rtts_at_least "$NET_TMP/tr.rtt" 3 5 $((2 * DELAY_MS))
check_one_trace nfq "delayed-path trace" "$NET_TMP/tr" dup \
  "$(net_client_addr $FAM)" "$(net_server_addr $FAM)" $PORT
REC=$(trace_records "${BG_OUT[nfq]}" | head -n1)
if [[ -n $REC ]]; then
  trace_rtts "$REC" >"$NET_TMP/nfq.rtt"
  show_file "nfqtrace RTTs (ttl ms)" "$NET_TMP/nfq.rtt"
  check "nfqtrace: RTT of ttl 1-2 < $DELAY_MS ms" rtts_below "$NET_TMP/nfq.rtt" 1 2 $DELAY_MS
  check "nfqtrace: RTT of ttl 3-5 >= $((2 * DELAY_MS)) ms" rtts_at_least "$NET_TMP/nfq.rtt" 3 5 $((2 * DELAY_MS))
fi
net_finish
