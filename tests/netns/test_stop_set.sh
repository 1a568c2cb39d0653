#!/usr/bin/env bash
# --stop-set (Doubletree): once one connection's trace has reached the
# server, the next connections to it are probed only near the server, back
# until their path meets the known one; the hops below are taken over and
# marked inferred_from the first flow. Every trace still equals
# traceroute -T, and costs a fraction of the probes; the data arrives intact.
# Usage: bash test_stop_set.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init stop_set
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001 KIB=1024

section "network: client — r1 — r2 — r3 — r4 — server"
net_build 4
net_icmp_ratelimit_off
net_describe $FAM
CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr $FAM)

section "nfqtrace --stop-set 60 --count 3: one upload, then two more"
upload_server "$SRV" $FAM $PORT
for i in 1 2 3; do make_data "$NET_TMP/data$i.bin" $KIB; done
require "nfqtrace starts and installs its rules" nfqtrace_start nfq "$CLI" "$NFQ" \
  --dport $PORT --stop-set 60 --count 3 --format json
OUT=${BG_OUT[nfq]}
upload_start up1 "$CLI" $FAM "$DST" $PORT "$NET_TMP/data1.bin"
has_traces() { (( $(trace_records "$OUT" | wc -l) >= $1 )); }
check "the first connection's trace ends" wait_until 10 has_traces 1
upload_start up2 "$CLI" $FAM "$DST" $PORT "$NET_TMP/data2.bin"
upload_start up3 "$CLI" $FAM "$DST" $PORT "$NET_TMP/data3.bin"
check_nfqtrace_exit nfq 30
check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
for i in 1 2 3; do check "upload $i client exits 0" bg_wait "up$i" 30; done
check "3 uploads arrived complete" upload_wait $PORT 3 $((KIB * 1024)) 10
sent=$(for i in 1 2 3; do sha_of "$NET_TMP/data$i.bin"; done | sort)
check "the 3 sha256 sums match end to end" test "$(upload_received_shas $PORT)" = "$sent"

section "each trace against traceroute -T; what the later ones took over"
reference_trace client $FAM $PORT "$NET_TMP/tr"
show_nfq_output "$OUT"
check "output is JSON Lines" json_lines_valid "$OUT"
mapfile -t RECS < <(trace_records "$OUT")
check "3 trace records (got ${#RECS[@]})" test "${#RECS[@]}" -eq 3
first=${RECS[0]}
first_flow=$(jq -c .flow <<<"$first")
first_probes=$(jq .probes_sent <<<"$first")
check_trace "first flow" "$first" "$NET_TMP/tr" dup
check "first flow: probed every hop itself" json_true "$first" '[.hops[] | select(.inferred_from)] | length == 0'
for rec in "${RECS[@]:1}"; do
  sport=$(jq -r .flow.sport <<<"$rec")
  check_trace "flow $sport" "$rec" "$NET_TMP/tr" dup
  echo "  flow $sport: inferred at TTLs $(jq -c '[.hops[] | select(.inferred_from) | .ttl]' <<<"$rec"), $(jq .probes_sent <<<"$rec") probes (first flow: $first_probes)"
  check "flow $sport: TTLs 1-3 taken over from the first flow, marked so" json_true "$rec" \
    "[.hops[] | select(.inferred_from) | .ttl] == [1, 2, 3] and
     ([.hops[] | select(.inferred_from) | .inferred_from.flow] | unique) == [$first_flow]"
  check "flow $sport: TTLs 4-5 probed by itself" json_true "$rec" \
    '[.hops[] | select(.inferred_from == null and .probes > 0) | .ttl] == [4, 5]'
  check "flow $sport: under half the first flow's probes" test "$(jq .probes_sent <<<"$rec")" -lt $((first_probes / 2))
done
check "hop lines are the traces' own replies, flow by flow" hop_lines_match_traces "$OUT"
net_finish
