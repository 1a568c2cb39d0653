#!/usr/bin/env bash
# An application that asks for ICMP errors on its TCP socket (IP_RECVERR,
# IPV6_RECVERR) must not see the time-exceeded its probes draw: the kernel
# would hand it EHOSTUNREACH ("No route to host") on its next write. With a
# path whose far end is 20 ms away, the routers' replies arrive while the
# probed bytes are still unacknowledged, which is when TCP takes them for
# its own. nfqtrace reads them from the queue and drops those that answer a
# probe, so the ICMP stack never sees them (Icmp(6)InTimeExcds stays 0).
# IPv4 and IPv6: the upload (socat with ip-recverr / ipv6-recverr) ends
# without an error and intact, and the trace equals traceroute -T.
# Usage: bash test_recverr.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init recverr
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
net_helpers "$NFQ"   # delayq
KIB=1024

section "network: client — r1 — r2 — r3 (+20 ms) — server"
net_build 3
net_icmp_ratelimit_off
net_delay "$(net_router 3)" 20
CLI=$(net_client) SRV=$(net_server)

# nstat_value NS NAME: the counter's absolute value.
nstat_value() { ns_exec "$1" nstat -az "$2" | awk -v n="$2" '$1 == n { print $2 }'; }

for FAM in 4 6; do
  PORT=$((5000 + FAM)) DST=$(net_server_addr $FAM)
  name="nfq$FAM" data="$NET_TMP/data$FAM" opt=$([[ $FAM == 4 ]] && echo ip-recverr=1 || echo ipv6-recverr=1)
  section "IPv$FAM: an upload with $opt, traced (--count 1)"
  make_data "$data" $KIB
  upload_server "$SRV" $FAM $PORT
  te_counter=$([[ $FAM == 4 ]] && echo IcmpInTimeExcds || echo Icmp6InTimeExcds)
  te_before=$(nstat_value "$CLI" $te_counter)
  require "nfqtrace starts and installs its rules" nfqtrace_start "$name" "$CLI" "$NFQ" \
    --dport $PORT --count 1 --format json
  bg_start "up$FAM" ip netns exec "$CLI" bash -c \
    "bash '$NET_TMP/slowcat.sh' '$data' 16384 0.04 | socat -u - '$(connect_addr $FAM "$DST" $PORT),$opt'"
  check_nfqtrace_exit "$name" 30
  check "the upload client exits 0" bg_wait "up$FAM" 30
  check "socat reports no error (got: $(head -c 200 "${BG_ERR[up$FAM]}"))" test ! -s "${BG_ERR[up$FAM]}"
  check "the upload arrives intact (sha256)" upload_wait $PORT 1 $((KIB * 1024)) 10
  check "sha256 matches" test "$(upload_received_shas $PORT)" = "$(sha_of "$data")"
  te_after=$(nstat_value "$CLI" $te_counter)
  check "no time-exceeded reached the client's ICMP stack ($te_counter $te_before -> $te_after)" \
    test "$te_after" = "$te_before"
  check "no rule left in the client" no_nfqtrace_rules "$CLI"
  reference_trace client $FAM $PORT "$NET_TMP/tr$FAM"
  check_one_trace "$name" "IPv$FAM" "$NET_TMP/tr$FAM" dup "$(net_client_addr $FAM)" "$DST" $PORT
done
net_finish
