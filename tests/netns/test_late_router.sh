#!/usr/bin/env bash
# A router whose time-exceeded comes late (issue 13, item 1): r2 holds the
# ICMP time-exceeded it sends 300 ms (delayq on its OUTPUT), everything else
# passes at once.
#
#   client — r1 — r2 (its ICMP 300 ms late) — r3 — server
#
# Per family, nfqtrace on the client (--repeat 1, JSON) during a slow upload
# of about 4 s:
#   - round 1 does not wait for r2: once r3 and the server have answered and
#     the margin their replies give has passed, ttl 2 is taken for silent
#     ("silent":"inferred") and the round ends well before r2's answer;
#   - r2's answer, 300 ms later, is not lost: a hop line of round 1 at ttl 2,
#     from r2, with "late":true and an RTT of 300 ms or more;
#   - the margin adapts: a later round waits for r2, and its trace equals
#     traceroute -T hop for hop (run with a fixed 5 s wait: its default wait
#     adapts to the nearer hops' RTTs and would give up on r2 too);
#   - the hop lines are the traces' replies, but for the late ones;
#   - the upload intact, nfqtrace exits 0 on SIGINT, no rule left.
# Usage: bash test_late_router.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init late_router
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "inferred silence, late replies"
net_helpers "$NFQ"   # delayq
LATE_MS=300 KIB=1536

section "network: client — r1 — r2 (time-exceeded ${LATE_MS} ms late) — r3 — server"
net_build 3
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) R2=$(net_router 2)

# r2's own time-exceeded messages into delayq, nothing else of its own (IPv6
# neighbour discovery must not wait).
bg_start delayq-own ip netns exec "$R2" "$(net_helper delayq)" 3 $LATE_MS
wait_until 5 grep -q ready "${BG_OUT[delayq-own]}" || die "delayq did not start in r2"
ns_exec "$R2" iptables -t mangle -A OUTPUT -p icmp --icmp-type time-exceeded -j NFQUEUE --queue-num 3
ns_exec "$R2" ip6tables -t mangle -A OUTPUT -p icmpv6 --icmpv6-type time-exceeded -j NFQUEUE --queue-num 3

# late_hop_lines FILE ROUND: "ttl addr rtt" of the late hop lines of that round.
late_hop_lines() {
  jq -R -r --argjson r "$2" 'fromjson? | select(type == "object" and .type == "hop"
    and .round == $r and .late == true) | "\(.ttl) \(.addr) \(.rtt_ms)"' "$1"
}
# late_r2_answer FILE R2_ADDR: round 1 has a late hop line from r2 at ttl 2,
# at least LATE_MS after its probe.
late_r2_answer() {
  local lines; lines=$(late_hop_lines "$1" 1)
  echo "  round 1's late hop lines (ttl addr rtt_ms): ${lines:-none}"
  awk -v a="$2" -v min=$LATE_MS '$1 == 2 && $2 == a && $3 + 0 >= min { ok = 1 } END { exit !ok }' <<<"$lines"
}
for FAM in 4 6; do
  PORT=$((5500 + FAM))
  S_ADDR=$(net_server_addr $FAM) R2_ADDR=$(link_addr $FAM 1 2 2)
  section "IPv$FAM: a ${KIB} KiB slow upload, nfqtrace --repeat 1 on the client"
  net_describe $FAM
  DATA="$NET_TMP/data$FAM.bin"
  make_data "$DATA" $KIB
  upload_server "$SRV" $FAM $PORT
  require "nfqtrace starts and installs its rules" nfqtrace_start "nfq$FAM" "$CLI" "$NFQ" \
    --dport $PORT --mode dup --repeat 1 --timeout 1 --format json
  OUT=${BG_OUT[nfq$FAM]}
  upload_start "up$FAM" "$CLI" $FAM "$S_ADDR" $PORT "$DATA"
  check "IPv$FAM: upload client exits 0" bg_wait "up$FAM" 30
  check "IPv$FAM: upload arrived complete" upload_wait $PORT 1 $((KIB * 1024)) 10
  check "IPv$FAM: upload sha256 matches end to end" test "$(upload_received_shas $PORT)" = "$(sha_of "$DATA")"
  sleep 1.2   # the last round's late answer, and its --timeout
  bg_signal "nfq$FAM" INT
  rc=0; nfqtrace_wait "nfq$FAM" 5 || rc=$?
  bg_stop "upload-server-$PORT"
  show_file "nfqtrace stderr" "${BG_ERR[nfq$FAM]}" 10
  show_nfq_output "$OUT"
  check "IPv$FAM: nfqtrace exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM: no nfqtrace rule left in cli" no_nfqtrace_rules "$CLI"
  check "IPv$FAM: output is JSON Lines" json_lines_valid "$OUT"

  section "IPv$FAM: traceroute -T, waiting 5 s for every hop"
  ns_exec "$CLI" traceroute -"$FAM" -T -n -p $PORT -q 3 -m 16 -w 5,0,0 "$S_ADDR" >"$NET_TMP/tr$FAM.raw" 2>&1 || true
  parse_traceroute <"$NET_TMP/tr$FAM.raw" >"$NET_TMP/tr$FAM"
  net_expected_forward $FAM >"$NET_TMP/tr$FAM.want"
  show_file "traceroute -T from the client" "$NET_TMP/tr$FAM.raw"
  check "IPv$FAM: traceroute -T sees r2, late (harness sanity)" same_hops "hops" "$NET_TMP/tr$FAM.want" "$NET_TMP/tr$FAM"
  check "IPv$FAM: traceroute -T's RTTs at ttl 2 are ${LATE_MS} ms or more (harness sanity)" \
    rtts_at_least <(parse_traceroute_rtts <"$NET_TMP/tr$FAM.raw") 2 2 $LATE_MS

  section "IPv$FAM: round 1 infers r2 silent, then hears it late; a later round waits for it"
  R1=$(trace_records "$OUT" | jq -c 'select(.round == 1)' | sed -n 1p)
  check "IPv$FAM: round 1 reached the server (got $(jq -c '[.reached, .reason]' <<<"${R1:-null}"))" \
    json_true "${R1:-null}" '.reached == true'
  check "IPv$FAM: round 1's ttl 2 silent, inferred (got $(jq -c '.hops[1] | {silent, replies: (.replies | length)}' <<<"${R1:-null}"))" \
    json_true "${R1:-null}" '.hops[1].silent == "inferred" and (.hops[1].replies | length) == 0'
  dur="?"
  if [[ -n $R1 ]]; then
    dur=$(awk -v s="$(date -u -d "$(jq -r .start <<<"$R1")" +%s.%N)" -v e="$(date -u -d "$(jq -r .end <<<"$R1")" +%s.%N)" \
      'BEGIN { printf "%d", (e - s) * 1000 }')
  fi
  check "IPv$FAM: round 1 ended before r2's answer could come (${dur} ms < $LATE_MS ms)" \
    awk -v d="$dur" -v max=$LATE_MS 'BEGIN { exit !(d != "?" && d + 0 < max) }'
  check "IPv$FAM: r2's answer to round 1 is a late hop line, ${LATE_MS} ms or more" late_r2_answer "$OUT" "$R2_ADDR"
  LATER=$(trace_records "$OUT" | jq -c --arg a "$R2_ADDR" 'select(.round >= 2 and .reached == true
    and any(.hops[1].replies[]; .addr == $a))' | sed -n 1p)
  check "IPv$FAM: a later round waited for r2 (rounds: $(trace_records "$OUT" |
      jq -r '"\(.round):" + ([.hops[] | if (.replies | length) == 0 then "*" else ([.replies[].addr] | unique | join(",")) end] | join(" "))' | paste -sd' '))" \
    test -n "$LATER"
  if [[ -n $LATER ]]; then
    check_trace "IPv$FAM round $(jq .round <<<"$LATER")" "$LATER" "$NET_TMP/tr$FAM" dup
    check "IPv$FAM: its RTTs at ttl 2 are ${LATE_MS} ms or more" rtts_at_least <(trace_rtts "$LATER") 2 2 $LATE_MS
  fi
  check "IPv$FAM: the hop lines not late are the traces' replies" hop_lines_match_traces "$OUT"
done

bg_stop delayq-own
net_finish
