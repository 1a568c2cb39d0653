#!/usr/bin/env bash
# Tracing from a gateway (--forward, issue 13): nfqtrace runs on r1, the
# router of client — r1 — r2 — r3 — server, and traces the connections it
# forwards. The client has a public address and a private one (192.168.1.1,
# fd00:1::1) that r1 masquerades. Per family, an upload from each address:
#   - the trace is the client's traceroute -T seen from r1: its hops 2..4 as
#     ttl 1..3 (r1's probes leave r1 as the connection does), reaching the
#     server; the flow is the client's own address (as r1 forwards it,
#     before the NAT);
#   - the routers' answers never reach the client (Icmp(6)InTimeExcds
#     unchanged), the client retransmits nothing, the upload is intact, no
#     rule is left on r1.
# Without --forward, nfqtrace on r1 leaves forwarded connections alone: no
# trace, no probe (no time-exceeded reaches the client).
# nfqtrace-server --forward on r1, the client's host now a server behind the
# gateway (a download from it to the outside host), per family, and from
# its private address behind r1's port forwarding (DNAT, IPv4): the
# connection is traced unasked, its trace written by nfqtrace-server, the
# same hops as above (the inner host's path from r1 on), and the inner
# host unharmed as above. Its own cooperating client is still served.
# Usage: bash test_gateway.sh /path/to/nfqtrace (nfqtrace-server is taken
# from the same directory)
source "$(dirname "$0")/lib.sh"
net_init gateway
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "gateway"
coop_binaries "$NFQ"

section "network: client (public + private) — r1 (gateway, NAT for the private side) — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) R1=$(net_router 1)
ns_exec "$CLI" ip -4 addr add 192.168.1.1/24 dev fwd
ns_exec "$R1" ip -4 addr add 192.168.1.2/24 dev clside
ns_exec "$CLI" ip -6 addr add fd00:1::1/64 dev fwd nodad
ns_exec "$R1" ip -6 addr add fd00:1::2/64 dev clside nodad
ns_exec "$R1" iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -o srvside -j MASQUERADE
ns_exec "$R1" ip6tables -t nat -A POSTROUTING -s fd00:1::/64 -o srvside -j MASQUERADE
net_ready
priv_addr() { if [[ $1 == 4 ]]; then echo 192.168.1.1; else echo fd00:1::1; fi; }
bind_opt() { if [[ $1 == 4 ]]; then echo "bind=$2"; else echo "bind=[$2]"; fi; }

# nstat_value NS NAME: the counter's absolute value.
nstat_value() { ns_exec "$1" nstat -az "$2" | awk -v n="$2" '$1 == n { print $2 }'; }
# retransmissions: the client's, but for tail loss probes (sent when an ACK
# is late, as the receiver's delayed ACK may make it with or without us).
retransmissions() { echo $(($(nstat_value "$CLI" TcpRetransSegs) - $(nstat_value "$CLI" TcpExtTCPLossProbes))); }
# shifted REF OUT: the client's hops from ttl 2 on, as r1 sees them (ttl - 1).
shifted() { awk '$1 > 1 { print $1 - 1, $2 }' "$1" >"$2"; }

# gateway_upload NAME FAM SRC PORT ARGS...: nfqtrace ARGS on r1 during a
# 512 KiB upload from the client's address SRC; checks what holds with or
# without --forward (the client's side unharmed, no rule left).
gateway_upload() {
  local name=$1 fam=$2 src=$3 port=$4; shift 4
  local data="$NET_TMP/$name.bin" dst te te_before re_before
  dst=$(net_server_addr "$fam")
  te=$([[ $fam == 4 ]] && echo IcmpInTimeExcds || echo Icmp6InTimeExcds)
  make_data "$data" 512
  upload_server "$SRV" "$fam" "$port"
  te_before=$(nstat_value "$CLI" $te) re_before=$(retransmissions)
  require "nfqtrace starts on r1 and installs its rules" nfqtrace_start "$name" "$R1" "$NFQ" "$@"
  bg_start "$name-up" ip netns exec "$CLI" bash -c \
    "bash '$NET_TMP/slowcat.sh' '$data' 16384 0.04 | socat -u - '$(connect_addr "$fam" "$dst" "$port"),$(bind_opt "$fam" "$src")'"
  check "the upload client exits 0" bg_wait "$name-up" 30
  check "the upload arrives intact (sha256)" upload_wait "$port" 1 $((512 * 1024)) 10
  check "sha256 matches" test "$(upload_received_shas "$port")" = "$(sha_of "$data")"
  local te_after re_after
  te_after=$(nstat_value "$CLI" $te) re_after=$(retransmissions)
  check "no time-exceeded reached the client ($te $te_before -> $te_after)" test "$te_after" = "$te_before"
  echo "  the client's tail loss probes: $(nstat_value "$CLI" TcpExtTCPLossProbes) in all (timing, with or without tracing)"
  check "the client retransmitted nothing but tail loss probes (TcpRetransSegs - TcpExtTCPLossProbes $re_before -> $re_after)" \
    test "$re_after" = "$re_before"
}

PORT=5100
for FAM in 4 6; do
  section "IPv$FAM: reference, traceroute -T from the client"
  reference_trace client $FAM 5000 "$NET_TMP/tr$FAM"
  shifted "$NET_TMP/tr$FAM" "$NET_TMP/want$FAM"
  for SRC in "$(net_client_addr $FAM)" "$(priv_addr $FAM)"; do
    PORT=$((PORT + 1))
    NAT=$([[ $SRC == "$(net_client_addr $FAM)" ]] && echo "public address" || echo "private address, masqueraded")
    section "IPv$FAM: nfqtrace --forward on r1 (--dport $PORT), an upload from the client's $NAT ($SRC)"
    gateway_upload "gw$PORT" $FAM "$SRC" $PORT --forward --dport $PORT --count 1 --format json
    check_nfqtrace_exit "gw$PORT" 30
    check "no nfqtrace rule left in r1" no_nfqtrace_rules "$R1"
    check_one_trace "gw$PORT" "IPv$FAM from r1, $NAT" "$NET_TMP/want$FAM" dup "$SRC" "$(net_server_addr $FAM)" $PORT
  done
done

PORT=5190
section "IPv4: nfqtrace on r1 without --forward (--dport $PORT), an upload from the client"
gateway_upload quiet 4 "$(net_client_addr 4)" $PORT --dport $PORT --format json
bg_signal quiet INT
check "nfqtrace ends on SIGINT with 0" nfqtrace_wait quiet 10
check "no trace of the forwarded connection (got $(trace_records "${BG_OUT[quiet]}" | wc -l))" \
  test "$(trace_records "${BG_OUT[quiet]}" | wc -l)" -eq 0
check "no nfqtrace rule left in r1" no_nfqtrace_rules "$R1"

# The inner host serves a download to the outside host: its packets leave
# from --port, forwarded by r1, where nfqtrace-server --forward runs. Last,
# the inner host's private address behind r1's port forwarding (DNAT): the
# outside host connects to r1.
has_trace() { [[ $(trace_records "$1" | wc -l) -ge 1 ]]; }
R1_OUT=$(ns_exec "$R1" ip -4 -o addr show dev srvside | awk '{ split($4, a, "/"); print a[1]; exit }')
ns_exec "$R1" iptables -t nat -A PREROUTING -i srvside -p tcp --dport 5220 -j DNAT --to-destination 192.168.1.1:5220
for FAM in 4 6 dnat; do
  PORT=$((5200 + ${FAM/dnat/20})) name="srv$FAM"
  INNER=$(net_client_addr ${FAM/dnat/4}) OUTER=$(net_server_addr ${FAM/dnat/4}) DIAL=$INNER
  [[ $FAM == dnat ]] && INNER=$(priv_addr 4) DIAL=$R1_OUT
  FAM=${FAM/dnat/4}
  section "IPv$FAM: nfqtrace-server --forward --port $PORT on r1, a download from the inner host ($INNER) to $OUTER (dialled: $DIAL)"
  data="$NET_TMP/$name.bin" got="$NET_TMP/$name.got"
  make_data "$data" 512
  download_server "$CLI" "$FAM" "$PORT" "$data"
  te=$([[ $FAM == 4 ]] && echo IcmpInTimeExcds || echo Icmp6InTimeExcds)
  te_before=$(nstat_value "$CLI" $te) re_before=$(retransmissions)
  require "nfqtrace-server --forward starts on r1" coop_server_start "$name" "$R1" --port $PORT --forward --format json
  download_start "$name-down" "$SRV" "$FAM" "$DIAL" "$PORT" "$got"
  check "the download client exits 0" bg_wait "$name-down" 30
  check "the download arrives intact (sha256)" test "$(sha_of "$got")" = "$(sha_of "$data")"
  te_after=$(nstat_value "$CLI" $te) re_after=$(retransmissions)
  check "no time-exceeded reached the inner host ($te $te_before -> $te_after)" test "$te_after" = "$te_before"
  check "the inner host retransmitted nothing but tail loss probes ($re_before -> $re_after)" \
    test "$re_after" = "$re_before"
  wait_until 5 has_trace "${BG_OUT[$name]}" || true  # a round may still wait for late answers
  bg_signal "$name" INT
  rc=0; bg_wait "$name" 10 || rc=$?
  check "nfqtrace-server ends on SIGINT with 0 (exit status $rc)" test "$rc" -eq 0
  check "no nfqtrace rule left in r1" no_nfqtrace_rules "$R1"
  check_one_trace "$name" "IPv$FAM ($name), the inner server's connection from r1" "$NET_TMP/want$FAM" dup \
    "$INNER" "$OUTER" "" "$PORT"
done

PORT=5210
section "IPv4: nfqtrace-server --forward --port $PORT on r1 still serves its own client (from the client's host)"
require "nfqtrace-server --forward starts on r1" coop_server_start own "$R1" --port $PORT --forward --format json
coop_client_start own-client "$CLI" 198.18.1.2:$PORT --format json
rc=0; bg_wait own-client 30 || rc=$?
show_file "client stderr" "${BG_ERR[own-client]}" 5
check "the client exits 0 (exit status $rc)" test "$rc" -eq 0
check "the client got the server's reverse trace, reached" \
  test "$(trace_records "${BG_OUT[own-client]}" | jq -r 'select(.direction == "reverse" and .reached) | 1' | wc -l)" -eq 1
bg_signal own INT
rc=0; bg_wait own 10 || rc=$?
check "nfqtrace-server ends on SIGINT with 0 (exit status $rc)" test "$rc" -eq 0
check "no nfqtrace rule left in r1" no_nfqtrace_rules "$R1"
check "no nfqtrace rule left in the client's host" no_nfqtrace_rules "$CLI"
net_finish
