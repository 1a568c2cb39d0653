#!/usr/bin/env bash
# The test network itself, without nfqtrace: traceroute -T must see exactly
# the hops the topology says (so that comparing nfqtrace with traceroute
# means something), the silent router must be a gap, the return chain must
# carry server→client traffic, the delay line must add its delay, transfers
# must arrive intact and the rule detector must see queue rules.
# Usage: bash test_harness.sh [/path/to/nfqtrace] (not run: it only says
# where the helpers are, helpers/ next to it)
source "$(dirname "$0")/lib.sh"
net_init harness
net_helpers "${1:-}"   # delayq

DELAY_MS=30
section "network: 4 routers (r2 silent, r3 delays ${DELAY_MS} ms), return via b1 b2"
net_build 4 2
net_silence "$(net_router 2)"
net_delay "$(net_router 3)" "$DELAY_MS"
net_icmp_ratelimit_off
net_describe 4
net_describe 6
CLI=$(net_client) SRV=$(net_server)

for fam in 4 6; do
  section "IPv$fam: traceroute -T from the client and from the server"
  net_expected_forward $fam >"$NET_TMP/want-fwd$fam"
  traceroute_hops "$CLI" $fam "$(net_server_addr $fam)" 5001 "$NET_TMP/tr-fwd$fam"
  show_file "traceroute client→server" "$NET_TMP/tr-fwd$fam.raw"
  check "IPv$fam client→server hops match the topology (gap at ttl 2)" \
    same_hops "hops" "$NET_TMP/want-fwd$fam" "$NET_TMP/tr-fwd$fam"

  net_expected_return $fam >"$NET_TMP/want-ret$fam"
  traceroute_hops "$SRV" $fam "$(net_client_addr $fam)" 5001 "$NET_TMP/tr-ret$fam"
  show_file "traceroute server→client" "$NET_TMP/tr-ret$fam.raw"
  check "IPv$fam server→client hops go through the return chain" \
    same_hops "hops" "$NET_TMP/want-ret$fam" "$NET_TMP/tr-ret$fam"

  # r3 delays what it forwards: r4 is behind it both ways (2x), the server's
  # answers come back through b1 b2 (1x), r1 and r3 itself not at all.
  parse_traceroute_rtts <"$NET_TMP/tr-fwd$fam.raw" >"$NET_TMP/rtt-fwd$fam"
  check "IPv$fam RTT to r1 and r3 < ${DELAY_MS} ms" rtts_below "$NET_TMP/rtt-fwd$fam" 1 3 "$DELAY_MS"
  check "IPv$fam RTT to r4 >= $((2 * DELAY_MS)) ms" rtts_at_least "$NET_TMP/rtt-fwd$fam" 4 4 $((2 * DELAY_MS))
  check "IPv$fam RTT to the server >= ${DELAY_MS} ms" rtts_at_least "$NET_TMP/rtt-fwd$fam" 5 5 "$DELAY_MS"
done

section "transfers: IPv4 upload, IPv6 download, sha256 end to end"
make_data "$NET_TMP/up.bin" 1024
make_data "$NET_TMP/down.bin" 1024
upload_server "$SRV" 4 5001
download_server "$SRV" 6 5002 "$NET_TMP/down.bin"
start=$(date +%s%N)
upload_start up "$CLI" 4 "$(net_server_addr 4)" 5001 "$NET_TMP/up.bin"
download_start down "$CLI" 6 "$(net_server_addr 6)" 5002 "$NET_TMP/got.bin"
check "upload client exits 0" bg_wait up 30
check "download client exits 0" bg_wait down 30
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "transfers took $elapsed_ms ms"
check "upload arrived complete" upload_wait 5001 1 $((1024 * 1024)) 5
check "upload sha256 matches" test "$(upload_received_shas 5001)" = "$(sha_of "$NET_TMP/up.bin")"
check "download sha256 matches" test "$(sha_of "$NET_TMP/got.bin")" = "$(sha_of "$NET_TMP/down.bin")"
check "a 1 MiB transfer lasts 2..20 s (long enough to trace)" test "$elapsed_ms" -ge 2000 -a "$elapsed_ms" -le 20000

section "rule detector"
check "no queue rule in the client" no_nfqtrace_rules "$CLI"
check "the delay line's NFQUEUE rule in r3 is seen" nfqtrace_rules_present "$(net_router 3)"

net_finish
