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
# Usage: bash test_gateway.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init gateway
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "gateway"

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
net_finish
