#!/usr/bin/env bash
# Middleboxes that change the connection's packets on the way (issue 10):
# r2 sets DSCP 10 on the TCP packets it forwards toward the server, r3 clears
# their ECN field. Client and server negotiate ECN, so the connection's data
# carries ECT(0). nfqtrace on the client (--dport, JSON) must report, per
# family:
#   middleboxes: ip.dscp (ip6.dscp) first seen at ttl 3, sent 0, seen 10, and
#                ip.ecn (ip6.ecn) first seen at ttl 4, sent 2 (ECT(0)), seen 0
#   changes:     the replies of ttl 3 and 4 name the DSCP field, those of ttl
#                1-2 do not; no reply below ttl 4 names the ECN field
#   on the wire: no probe that may reach the server is ECN-capable, while the
#                probes of the second pass below the server keep ECT(0)
#   text:        "DSCP 0 -> 10 between hop 2 and hop 3"
# and its trace equals traceroute -T hop by hop.
#
# Why 4 routers and not 3: a router quotes a packet as it arrived (the TTL is
# checked before the FORWARD hook where r3 clears ECN), so r3's clearing only
# shows in the quote of the router after it; with r3 the last router, that is
# the server, which answers with a D-SACK and quotes nothing. r4 is that
# router: the ECN change is "first seen at ttl 4".
# Usage: bash test_middleboxes.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init middleboxes tcpdump
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "middleboxes, changes"
DEST_TTL=5   # the server's distance: client — r1 — r2 — r3 — r4 — server

section "network: client — r1 — r2 (DSCP 10) — r3 (ECN cleared) — r4 — server"
net_build 4
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) R2=$(net_router 2) R3=$(net_router 3)
# "srvside" is a router's interface toward the server. Only TCP, only toward
# the server: the ICMP answers coming back are left alone.
for ipt in iptables ip6tables; do
  ns_exec "$R2" $ipt -t mangle -A FORWARD -o srvside -p tcp -j DSCP --set-dscp 10
  # TOS --and-tos works on the IPv4 TOS byte and the IPv6 traffic class
  # alike: 0xfc keeps the DSCP, zeroes the two ECN bits.
  ns_exec "$R3" $ipt -t mangle -A FORWARD -o srvside -p tcp -j TOS --and-tos 0xfc
done
# ECN on both ends (net.ipv4.tcp_ecn covers IPv6 too): the client asks, the
# server agrees, the data segments carry ECT(0).
for ns in "$CLI" "$SRV"; do ns_exec "$ns" sysctl -qw net.ipv4.tcp_ecn=1; done

# middlebox_is REC FIELD TTL SENT SEEN: the trace lists FIELD once, with that
# first ttl and those values.
middlebox_is() {
  local rec=$1 field=$2 got
  got=$(jq -c --arg f "$field" '[.middleboxes[]? | select(.field == $f)]' <<<"$rec")
  if jq -e --argjson t "$3" --argjson s "$4" --argjson v "$5" \
       'length == 1 and .[0].first_seen_ttl == $t and .[0].sent == $s and .[0].seen == $v' <<<"$got" >/dev/null; then
    return 0
  fi
  echo "  $field in middleboxes: $got"; return 1
}
# middlebox_fields REC: the fields of the trace's middleboxes, sorted, joined.
middlebox_fields() { jq -r '[.middleboxes[]?.field] | sort | join(",")' <<<"$1"; }
# replies_changes OUT: "ttl kind changes" of every ICMP reply, from the hop
# lines and from the trace records (both carry changes).
replies_changes() {
  jq -R -r 'fromjson? | select(type == "object")
    | if .type == "hop" then "hop \(.ttl) \(.kind) \((.changes // ["MISSING"]) | join(","))"
      elif .type == "trace" then (.hops[] | .ttl as $t | .replies[]
        | "reply \($t) \(.kind) \(if .kind == "destination" then "-" else ((.changes // ["MISSING"]) | join(",")) end)")
      else empty end' "$1"
}
# changes_ok FILE DSCP_FIELD ECN_FIELD: every ICMP reply (hop line and trace
# reply) has a changes array; those of ttl >= 3 name DSCP_FIELD, those below
# do not; none below ttl 4 names ECN_FIELD; at least one of ttl 4 does.
changes_ok() {
  awk -v d="$2" -v e="$3" '
    $3 == "destination" { next }
    { n++; split($4, f, ","); has_d = 0; has_e = 0
      for (i in f) { if (f[i] == d) has_d = 1; if (f[i] == e) has_e = 1; if (f[i] == "MISSING") { print "    no changes: " $0; bad++ } }
      if ($2 >= 3 && !has_d) { print "    ttl " $2 " without " d ": " $0; bad++ }
      if ($2 < 3 && has_d)  { print "    ttl " $2 " with " d ": " $0; bad++ }
      if ($2 < 4 && has_e)  { print "    ttl " $2 " with " e ": " $0; bad++ }
      if ($2 == 4 && has_e) ecn4++ }
    END { if (n == 0) print "    no ICMP replies"; if (ecn4 == 0) print "    no reply of ttl 4 names " e
          exit (n == 0 || bad > 0 || ecn4 == 0) }' "$1"
}
# pcap_count NAME FILTER: packets of capture NAME that match FILTER.
pcap_count() { tcpdump -nn -r "$NET_TMP/$1.pcap" "$2" 2>/dev/null | wc -l; }

for FAM in 4 6; do
  PORT=$((5100 + FAM))
  C_ADDR=$(net_client_addr $FAM) S_ADDR=$(net_server_addr $FAM)
  if [[ $FAM == 4 ]]; then
    DSCP=ip.dscp ECN=ip.ecn
    # IPv4: TOS is byte 1 (ECN its low 2 bits), the TTL byte 8.
    TTL_B='ip[8]' ECN_B='(ip[1] & 3)' PROTO=ip
  else
    DSCP=ip6.dscp ECN=ip6.ecn
    # IPv6: the traffic class spans bytes 0-1, its ECN bits are 0x30 of
    # byte 1; the hop limit is byte 7.
    TTL_B='ip6[7]' ECN_B='((ip6[1] & 0x30) >> 4)' PROTO=ip6
  fi
  section "IPv$FAM: nfqtrace on the client (--dport $PORT --format json --count 1), during a 512 KiB upload"
  net_describe $FAM
  # Everything the client sends toward the server, as it leaves: the
  # connection's own packets leave with TTL 64, nfqtrace's probes with their
  # TTL (at most --maxttl, 30), so the TTL as sent tells which probe it is.
  capture_start "cap$FAM" "$CLI" fwd "$PROTO and tcp and dst port $PORT"
  traced_transfer upload "nfq$FAM" $FAM $PORT 512 "$CLI" "$NFQ" \
    --dport $PORT --count 1 --format json
  capture_stop "cap$FAM"

  section "IPv$FAM: reference and comparison"
  reference_trace client $FAM $PORT "$NET_TMP/tr$FAM"
  check_one_trace "nfq$FAM" "IPv$FAM trace" "$NET_TMP/tr$FAM" dup "$C_ADDR" "$S_ADDR" $PORT
  OUT=${BG_OUT[nfq$FAM]}
  REC=$(trace_records "$OUT" | head -n1)
  echo "  middleboxes: $(jq -c '.middleboxes' <<<"${REC:-{\}}")"
  echo "  rewrites: $(jq -c '.rewrites' <<<"${REC:-{\}}")  nat: $(jq -c '.nat' <<<"${REC:-{\}}")"
  replies_changes "$OUT" >"$NET_TMP/changes$FAM"
  show_file "IPv$FAM: changes per reply (line ttl kind changes)" "$NET_TMP/changes$FAM" 80

  section "IPv$FAM: what the path changed"
  check "IPv$FAM: middleboxes has $DSCP first seen at ttl 3, sent 0, seen 10" middlebox_is "$REC" $DSCP 3 0 10
  check "IPv$FAM: middleboxes has $ECN first seen at ttl 4, sent 2 (ECT(0)), seen 0" middlebox_is "$REC" $ECN 4 2 0
  want=$(printf '%s\n' "$DSCP" "$ECN" | sort | paste -sd,)
  check "IPv$FAM: middleboxes lists those two fields only (got '$(middlebox_fields "$REC")')" \
    test "$(middlebox_fields "$REC")" = "$want"
  check "IPv$FAM: no rewrites, no nat" json_true "$REC" '(.rewrites | length) == 0 and .nat == null'
  check "IPv$FAM: replies of ttl 3-4 list $DSCP in changes, ttl 1-2 do not; $ECN only from ttl 4" \
    changes_ok "$NET_TMP/changes$FAM" $DSCP $ECN

  section "IPv$FAM: the ECN codepoint of the probes, as they left the client"
  data_ect=$(pcap_count "cap$FAM" "$TTL_B == 64 and $ECN_B == 2")
  far_ect=$(pcap_count "cap$FAM" "$TTL_B >= $DEST_TTL and $TTL_B <= 30 and $ECN_B != 0")
  far_all=$(pcap_count "cap$FAM" "$TTL_B >= $DEST_TTL and $TTL_B <= 30")
  near_ect=$(pcap_count "cap$FAM" "$TTL_B < $DEST_TTL and $ECN_B == 2")
  near_all=$(pcap_count "cap$FAM" "$TTL_B < $DEST_TTL")
  echo "  connection packets with ECT(0): $data_ect; probes with ttl >= $DEST_TTL: $far_all, ECN-capable: $far_ect;" \
       "probes below: $near_all, with ECT(0): $near_ect"
  check "IPv$FAM: the connection negotiated ECN: its packets carry ECT(0) (harness sanity)" test "$data_ect" -gt 0
  # A probe with ttl >= the server's distance may reach the server (all of
  # the first pass's from ttl 5 do): it must be Not-ECT. (A capture at the
  # server would tell nothing here: r3 clears every packet's ECN field.)
  check "IPv$FAM: probes went out with ttl >= $DEST_TTL (they reach the server)" test "$far_all" -gt 0
  check "IPv$FAM: none of them is ECN-capable" test "$far_ect" -eq 0
  check "IPv$FAM: probes below the server, after it was found, keep ECT(0)" test "$near_ect" -gt 0

  section "IPv$FAM: the same in text (--format text)"
  traced_transfer upload "txt$FAM" $FAM $((PORT + 10)) 256 "$CLI" "$NFQ" \
    --dport $((PORT + 10)) --count 1 --format text
  show_file "IPv$FAM: nfqtrace text output" "${BG_OUT[txt$FAM]}" 20
  check "IPv$FAM text: 'DSCP 0 -> 10 between hop 2 and hop 3'" \
    grep -qF "DSCP 0 -> 10 between hop 2 and hop 3" "${BG_OUT[txt$FAM]}"
  check "IPv$FAM text: 'ECN 2 -> 0 between hop 3 and hop 4'" \
    grep -qF "ECN 2 -> 0 between hop 3 and hop 4" "${BG_OUT[txt$FAM]}"
done
net_finish
