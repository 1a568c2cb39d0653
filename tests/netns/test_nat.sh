#!/usr/bin/env bash
# A NAT between client and server (issue 10): client — r1 — r2 — server, the
# client on a private network (192.168.1.0/24, fd00:1::/64) that the server
# has no route to; r1 masquerades what leaves toward r2 (TCP to ports
# 20000-20999, so that the port changes too, everything else to its address).
# Per family:
#   (a) nfqtrace on the client (--dport) during an upload: reaches the
#       server, equals traceroute -T from the client.
#   (b) nfqtrace on the server (--sport) during a download: the reverse trace
#       ends at the NAT's public address (r1's, 198.18.2.1 / 2001:db8:1:2::1);
#       r1 answers the probe that expires in it with a time-exceeded from that
#       same address one hop before the destination, so the trace has
#       "nat": {first_seen_ttl 2, evidence naming the time-exceeded from the
#       destination's address}. Its hops are traceroute -T's from the server to
#       r1's public address (where r1 itself answers, at ttl 2), then that
#       address once more at ttl 3: the client behind it.
#   (c) the cooperating pair: nfqtrace-client on the client, nfqtrace-server
#       on the server. The client's forward and reverse trace objects and the
#       server's own trace object carry nat.client_sees = the client's own
#       address:port, nat.server_sees = r1's public address:port; the client's
#       text output has a line with NAT and both endpoints.
# Linux NAT translates the quotes of the ICMP errors it forwards back exactly
# (addresses, ports and the TCP checksum), so a trace from the private side
# sees no sign of the NAT in quotes: (a) only reports what it finds.
# Usage: bash test_nat.sh /path/to/nfqtrace (nfqtrace-server and
# nfqtrace-client are taken from the same directory; without them, (c) is
# left out)
source "$(dirname "$0")/lib.sh"
net_init nat
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "nat"
HAVE_COOP=0
if [[ -x $(dirname "$NFQ")/nfqtrace-server && -x $(dirname "$NFQ")/nfqtrace-client ]]; then
  coop_binaries "$NFQ"; HAVE_COOP=1
fi

section "network: client (private) — r1 (NAT) — r2 — server"
net_build 2
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) R1=$(net_router 1)

# The private side: link 1 gets private addresses instead of its public ones.
ns_exec "$CLI" ip -4 addr add 192.168.1.1/24 dev fwd
ns_exec "$R1" ip -4 addr add 192.168.1.2/24 dev clside
ns_exec "$CLI" ip -6 addr add fd00:1::1/64 dev fwd nodad
ns_exec "$R1" ip -6 addr add fd00:1::2/64 dev clside nodad
ns_exec "$CLI" ip -4 route replace default via 192.168.1.2 src 192.168.1.1
ns_exec "$CLI" ip -6 route replace default via fd00:1::2 src fd00:1::1
for fam in 4 6; do
  ns_exec "$CLI" ip -"$fam" addr del "$(link_addr $fam 1 1 1)/$([[ $fam == 4 ]] && echo 24 || echo 64)" dev fwd
  ns_exec "$R1" ip -"$fam" addr del "$(link_addr $fam 1 1 2)/$([[ $fam == 4 ]] && echo 24 || echo 64)" dev clside
done
for ipt in iptables ip6tables; do
  ns_exec "$R1" $ipt -t nat -A POSTROUTING -o srvside -p tcp -j MASQUERADE --to-ports 20000-20999
  ns_exec "$R1" $ipt -t nat -A POSTROUTING -o srvside -j MASQUERADE
done
net_ready

priv_addr() { if [[ $1 == 4 ]]; then echo 192.168.1.1; else echo fd00:1::1; fi; }     # the client
priv_gw() { if [[ $1 == 4 ]]; then echo 192.168.1.2; else echo fd00:1::2; fi; }       # r1, private side
pub_addr() { link_addr "$1" 1 2 1; }   # r1 toward r2: the NAT's public address
endpoint() { if [[ $1 == 4 ]]; then echo "$2:$3"; else echo "[$2]:$3"; fi; }

# nat_reference NS FAM DST PORT OUT WANT...: traceroute -T from NS to DST
# into OUT, checked against the hops WANT ("ttl addr") (harness sanity).
nat_reference() {
  local ns=$1 fam=$2 dst=$3 port=$4 out=$5; shift 5
  printf '%s\n' "$@" >"$out.want"
  traceroute_hops "$ns" "$fam" "$dst" "$port" "$out"
  show_file "traceroute -T from ${ns#"$NET_PREFIX"} to $dst" "$out.raw"
  check "traceroute -T from ${ns#"$NET_PREFIX"} to $dst sees $(paste -sd, "$out.want") (harness sanity)" \
    same_hops "hops" "$out.want" "$out"
}
# only_trace OUT: the one trace record of an nfqtrace output (checked).
only_trace() {
  local out=$1 label=$2
  show_nfq_output "$out"
  check "$label: output is JSON Lines" json_lines_valid "$out"
  check "$label: exactly one trace record (got $(trace_records "$out" | wc -l))" test "$(trace_records "$out" | wc -l)" -eq 1
  check "$label: hop lines are the trace's replies" hop_lines_match_traces "$out"
}
# nat_ends_are REC CLIENT_SEES SERVER_SEES: the trace's nat names both ends.
nat_ends_are() {
  jq -e --arg c "$2" --arg s "$3" '.nat.client_sees == $c and .nat.server_sees == $s' <<<"$1" >/dev/null && return 0
  echo "  nat: $(jq -c .nat <<<"$1")"; return 1
}
# nat_evidence_ok REC TTL: nat.first_seen_ttl is TTL, its evidence names the
# time-exceeded from the destination's address, and the hop of that ttl has
# such a reply.
nat_evidence_ok() {
  jq -e --argjson t "$2" '.nat.first_seen_ttl == $t
      and (.nat.evidence | test("time-exceeded from the destination.s address"))
      and ([.hops[] | select(.ttl == $t) | .replies[] | select(.kind == "time-exceeded" and .addr == $dst)] | length > 0)' \
    --arg dst "$(jq -r .flow.dst <<<"$1")" <<<"$1" >/dev/null && return 0
  echo "  nat: $(jq -c .nat <<<"$1")"; return 1
}
# nat_line FILE A B: a line of FILE has the word NAT, A and B.
nat_line() { grep -F NAT "$1" | grep -F -- "$2" | grep -qF -- "$3"; }

for FAM in 4 6; do
  PORT=$((5200 + FAM))
  C_PRIV=$(priv_addr $FAM) PUB=$(pub_addr $FAM) S_ADDR=$(net_server_addr $FAM)
  R2_CLI=$(link_addr $FAM 1 2 2) R2_SRV=$(link_addr $FAM 1 3 1)
  echo
  echo "IPv$FAM: client $C_PRIV -> r1 $(priv_gw $FAM) [NAT, public $PUB] -> r2 $R2_CLI -> server $S_ADDR"

  section "IPv$FAM (a): nfqtrace on the client (--dport $PORT), during a 512 KiB upload"
  traced_transfer upload "fwd$FAM" $FAM $PORT 512 "$CLI" "$NFQ" --dport $PORT --count 1 --format json
  nat_reference "$CLI" $FAM "$S_ADDR" $PORT "$NET_TMP/tr-fwd$FAM" "1 $(priv_gw $FAM)" "2 $R2_CLI" "3 $S_ADDR"
  only_trace "${BG_OUT[fwd$FAM]}" "IPv$FAM (a)"
  REC=$(trace_records "${BG_OUT[fwd$FAM]}" | head -n1)
  if [[ -n $REC ]]; then
    check_trace "IPv$FAM (a) client trace" "$REC" "$NET_TMP/tr-fwd$FAM" dup
    check "IPv$FAM (a): flow is $C_PRIV -> $S_ADDR:$PORT (got $(jq -c .flow <<<"$REC"))" \
      json_true "$REC" ".flow.src == \"$C_PRIV\" and .flow.dst == \"$S_ADDR\" and .flow.dport == $PORT"
    echo "  (a) what the client's trace says of the NAT: nat $(jq -c .nat <<<"$REC"), middleboxes $(jq -c .middleboxes <<<"$REC")"
  fi

  SPORT=$((PORT + 10))
  section "IPv$FAM (b): nfqtrace on the server (--sport $SPORT), during a 512 KiB download"
  traced_transfer download "rev$FAM" $FAM $SPORT 512 "$SRV" "$NFQ" --sport $SPORT --count 1 --format json
  # Where r1 itself answers (RST), one hop before the client behind it.
  nat_reference "$SRV" $FAM "$PUB" $SPORT "$NET_TMP/tr-rev$FAM" "1 $R2_SRV" "2 $PUB"
  { cat "$NET_TMP/tr-rev$FAM"; echo "3 $PUB"; } >"$NET_TMP/want-rev$FAM"
  only_trace "${BG_OUT[rev$FAM]}" "IPv$FAM (b)"
  REC=$(trace_records "${BG_OUT[rev$FAM]}" | head -n1)
  if [[ -n $REC ]]; then
    echo "  (b) nat: $(jq -c .nat <<<"$REC")"
    check_trace "IPv$FAM (b) server trace (traceroute's hops, then the client behind the NAT)" \
      "$REC" "$NET_TMP/want-rev$FAM" dup
    check "IPv$FAM (b): the destination is the NAT's public address $PUB (got $(jq -c .flow <<<"$REC"))" \
      json_true "$REC" ".flow.src == \"$S_ADDR\" and .flow.sport == $SPORT and .flow.dst == \"$PUB\" and (.flow.dport >= 20000 and .flow.dport <= 20999)"
    check "IPv$FAM (b): nat first seen at ttl 2, a time-exceeded from the destination's address" nat_evidence_ok "$REC" 2
  fi

  (( HAVE_COOP )) || continue
  CPORT_SRV=$((PORT + 20))
  section "IPv$FAM (c): nfqtrace-server --port $CPORT_SRV, nfqtrace-client --format json"
  require "nfqtrace-server starts, listens and installs its rules" \
    coop_server_start "srv$FAM" "$SRV" --port $CPORT_SRV --format json
  name="cli$FAM"
  coop_client_start "$name" "$CLI" "$(coop_endpoint $FAM "$S_ADDR" $CPORT_SRV)" --format json
  rc=0; bg_wait "$name" 30 || rc=$?
  show_file "client stderr" "${BG_ERR[$name]}" 10
  check "IPv$FAM (c): client exits 0 (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM (c): no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
  OUT=${BG_OUT[$name]}
  show_coop_output "$OUT"
  check "IPv$FAM (c): output is JSON Lines" json_lines_valid "$OUT"
  check "IPv$FAM (c): one trace per direction, every hop's direction and flow match its trace" coop_directions_ok "$OUT"
  FWD=$(coop_records "$OUT" trace forward | head -n1)
  REV=$(coop_records "$OUT" trace reverse | head -n1)
  if [[ -n $FWD && -n $REV ]]; then
    CPORT=$(jq -r .flow.sport <<<"$FWD") NPORT=$(jq -r .flow.dport <<<"$REV")
    OWN=$(endpoint $FAM "$C_PRIV" "$CPORT") SEEN=$(endpoint $FAM "$PUB" "$NPORT")
    echo "  the client is $OWN, the server sees $SEEN"
    echo "  forward nat: $(jq -c .nat <<<"$FWD"); reverse nat: $(jq -c .nat <<<"$REV")"
    check "IPv$FAM (c): the NAT changed the port too (harness sanity: $CPORT -> $NPORT)" \
      test "$NPORT" -ge 20000 -a "$NPORT" -le 20999
    nat_reference "$CLI" $FAM "$S_ADDR" $CPORT_SRV "$NET_TMP/tr-cf$FAM" "1 $(priv_gw $FAM)" "2 $R2_CLI" "3 $S_ADDR"
    check_trace "IPv$FAM (c) forward" "$FWD" "$NET_TMP/tr-cf$FAM" dup
    check_trace "IPv$FAM (c) reverse (as in (b))" "$REV" "$NET_TMP/want-rev$FAM" dup
    check "IPv$FAM (c): reverse flow is the server's, $S_ADDR:$CPORT_SRV -> $SEEN" \
      json_true "$REV" ".flow.src == \"$S_ADDR\" and .flow.sport == $CPORT_SRV and .flow.dst == \"$PUB\""
    check "IPv$FAM (c): forward trace: nat client_sees $OWN, server_sees $SEEN" nat_ends_are "$FWD" "$OWN" "$SEEN"
    check "IPv$FAM (c): reverse trace: nat client_sees $OWN, server_sees $SEEN" nat_ends_are "$REV" "$OWN" "$SEEN"
    check "IPv$FAM (c): reverse trace: nat first seen at ttl 2 as well" nat_evidence_ok "$REV" 2
    SREC=$(trace_records "${BG_OUT[srv$FAM]}" | jq -c "select(.flow.dport == $NPORT)" | head -n1)
    echo "  server's own trace: nat $(jq -c .nat <<<"${SREC:-{\}}")"
    check "IPv$FAM (c): the server's own trace object has one trace of that client" test -n "$SREC"
    [[ -n $SREC ]] && check "IPv$FAM (c): the server's trace: nat client_sees $OWN, server_sees $SEEN" \
      nat_ends_are "$SREC" "$OWN" "$SEEN"
  else
    check "IPv$FAM (c): both traces present" false
  fi

  section "IPv$FAM (c): nfqtrace-client in text mode"
  name="clitext$FAM"
  coop_client_start "$name" "$CLI" "$(coop_endpoint $FAM "$S_ADDR" $CPORT_SRV)"
  rc=0; bg_wait "$name" 30 || rc=$?
  show_file "client output" "${BG_OUT[$name]}" 30
  show_file "client stderr" "${BG_ERR[$name]}" 10
  check "IPv$FAM (c) text: client exits 0 (exit status $rc)" test "$rc" -eq 0
  # The ends from the table's header lines: "forward  A:P -> S:Q ..." and
  # "reverse  S:Q -> B:R ...".
  OWN=$(awk '$1 == "forward" { print $2; exit }' "${BG_OUT[$name]}")
  SEEN=$(awk '$1 == "reverse" { print $4; exit }' "${BG_OUT[$name]}")
  echo "  from the header lines: the client is '$OWN', the server sees '$SEEN'"
  check "IPv$FAM (c) text: header lines name the client's own end and the NAT's (harness sanity)" \
    test "${OWN%:*}" = "$(endpoint $FAM "$C_PRIV" X | sed 's/:X$//')" -a "${SEEN%:*}" = "$(endpoint $FAM "$PUB" X | sed 's/:X$//')"
  check "IPv$FAM (c) text: a line with NAT, $OWN and $SEEN" nat_line "${BG_OUT[$name]}" "$OWN" "$SEEN"

  bg_signal "srv$FAM" INT
  rc=0; bg_wait "srv$FAM" 5 || rc=$?
  check "IPv$FAM (c): server exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM (c): no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
done
net_finish
