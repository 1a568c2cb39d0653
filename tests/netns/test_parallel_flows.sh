#!/usr/bin/env bash
# Five uploads at once, one nfqtrace (--count 5): each connection gets its
# own trace (five records, one per client port, no mix-up of replies), each
# equal to traceroute -T and reaching the server; all data arrives intact.
# Usage: bash test_parallel_flows.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init parallel_flows
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001 FLOWS=5 KIB=2048

section "network: client — r1 — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe $FAM
CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr $FAM)

section "nfqtrace on the client (--dport $PORT --count $FLOWS), $FLOWS parallel 2 MiB uploads"
upload_server "$SRV" $FAM $PORT
for i in $(seq $FLOWS); do make_data "$NET_TMP/data$i.bin" $KIB; done
require "nfqtrace starts and installs its rules" nfqtrace_start nfq "$CLI" "$NFQ" \
  --dport $PORT --mode dup --count $FLOWS --max-flows 8 --format json
for i in $(seq $FLOWS); do upload_start "up$i" "$CLI" $FAM "$DST" $PORT "$NET_TMP/data$i.bin"; done
check_nfqtrace_exit nfq 40
check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
for i in $(seq $FLOWS); do check "upload $i client exits 0" bg_wait "up$i" 30; done
check "$FLOWS uploads arrived complete" upload_wait $PORT $FLOWS $((KIB * 1024)) 10
sent=$(for i in $(seq $FLOWS); do sha_of "$NET_TMP/data$i.bin"; done | sort)
check "the $FLOWS sha256 sums match end to end" test "$(upload_received_shas $PORT)" = "$sent"

section "reference and comparison"
reference_trace client $FAM $PORT "$NET_TMP/tr"
OUT=${BG_OUT[nfq]}
show_nfq_output "$OUT"
check "output is JSON Lines" json_lines_valid "$OUT"
check "$FLOWS trace records (got $(trace_records "$OUT" | wc -l))" test "$(trace_records "$OUT" | wc -l)" -eq $FLOWS
client_ports=$(cd "$NET_TMP/up-$PORT" && ls | sed 's/^from-//' | sort -n | tr '\n' ' ')
traced_ports=$(trace_records "$OUT" | jq -r .flow.sport | sort -n | tr '\n' ' ')
echo "  client ports: $client_ports"
echo "  traced ports: $traced_ports"
check "one trace per connection (traced ports = client ports)" test "$traced_ports" = "$client_ports"
while read -r rec; do
  sport=$(jq -r .flow.sport <<<"$rec")
  check_trace "flow $sport" "$rec" "$NET_TMP/tr" dup
  check "flow $sport: addresses are client -> server:$PORT" json_true "$rec" \
    ".flow.src == \"$(net_client_addr $FAM)\" and .flow.dst == \"$DST\" and .flow.dport == $PORT"
done < <(trace_records "$OUT")
check "hop lines are the traces' replies, flow by flow" hop_lines_match_traces "$OUT"
net_finish
