#!/usr/bin/env bash
# A route change in the middle of a connection (issue 10, path_change): two
# parallel routers between r1 and r3,
#
#   client — r1 —— r2a —— r3 — server
#               \_ r2b _/
#
# Both directions go via r2a at first. One upload lasts ~6 s, traced by
# nfqtrace --repeat 1 --format json on the client; right after its third
# round has ended (so that no round is under way), r1's route to the server
# and r3's route back to the client are switched to r2b. r3 then answers
# from its r2b-side address too (an IPv6 router answers from the interface a
# probe arrived on, an IPv4 one from the interface of its route back: moving
# both routes makes the two families alike). Per family: exactly one
# path_change line, for the upload's flow, after the switch (its round later
# than every round that ended before), with previous_round = round - 1 and
# two changes: ttl 2 from [r2a] to [r2b], ttl 3 from [r3's r2a-side address]
# to [its r2b-side address]; the first round equals traceroute -T before the
# switch, the last complete one traceroute -T after it; the upload intact;
# nfqtrace exits 0 on SIGINT and leaves no rule.
# Usage: bash test_route_change.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init route_change
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "path_change"
KIB=640

section "network: client — r1 — {r2a | r2b} — r3 — server"
net_build 3   # r2 of the chain is r2a
CLI=$(net_client) SRV=$(net_server) R1=$(net_router 1) R3=$(net_router 3)
R2B="${NET_PREFIX}r2b"
new_namespace "$R2B"
enable_forwarding "$R2B"
# r1 —— r2b is 198.19.1.0/24 (2001:db8:2:1::/64), r2b —— r3 198.19.2.0/24
# (2001:db8:2:2::/64): the return chain's addresses, unused otherwise here.
connect "$R1" alt "$R2B" clside 2 1
connect "$R2B" srvside "$R3" alt 2 2
for fam in 4 6; do
  add_route "$R2B" $fam "$(link_net $fam 1 4)" via "$(link_addr $fam 2 2 2)"   # the server, via r3
  add_route "$R2B" $fam "$(link_net $fam 1 1)" via "$(link_addr $fam 2 1 1)"   # the client, via r1
done
net_icmp_ratelimit_off
ns_exec "$R2B" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
net_ready

# max_round FILE: the highest round of the trace records so far (0: none).
max_round() { trace_records "$1" | jq -s 'map(.round) | max // 0'; }
rounds_at_least() { (( $(max_round "$1") >= $2 )); }
# rounds_via FILE LAST_BEFORE FIRST_AFTER ADDR_BEFORE ADDR_AFTER: ttl 2 of
# every complete round up to LAST_BEFORE is ADDR_BEFORE alone, of every one
# from FIRST_AFTER on ADDR_AFTER alone.
rounds_via() {
  local bad
  bad=$(trace_records "$1" | jq -r --argjson b "$2" --argjson p "$3" --arg a "$4" --arg z "$5" \
    'select(.reason == "reached") | ([.hops[] | select(.ttl == 2) | .replies[].addr] | unique) as $t2
     | select((.round <= $b and $t2 != [$a]) or (.round >= $p and $t2 != [$z])) | "round \(.round): ttl 2 \($t2)"')
  [[ -z $bad ]] && return 0
  echo "$bad" | sed 's/^/    /'; return 1
}
# path_changes FILE: the path_change lines.
path_changes() { jq -R -c 'fromjson? | select(type == "object" and .type == "path_change")' "$1"; }

for FAM in 4 6; do
  PORT=$((5300 + FAM))
  C_ADDR=$(net_client_addr $FAM) S_ADDR=$(net_server_addr $FAM)
  R2A_ADDR=$(link_addr $FAM 1 2 2) R2B_ADDR=$(link_addr $FAM 2 1 2)
  R3A_ADDR=$(link_addr $FAM 1 3 2) R3B_ADDR=$(link_addr $FAM 2 2 2)   # r3 on the r2a / r2b side
  echo
  echo "IPv$FAM: client $C_ADDR -> r1 $(link_addr $FAM 1 1 2) -> r2a $R2A_ADDR | r2b $R2B_ADDR -> r3 $(link_addr $FAM 1 3 2) -> server $S_ADDR"

  section "IPv$FAM: traceroute -T before the switch (via r2a)"
  reference_trace client $FAM $PORT "$NET_TMP/tr-before$FAM"

  section "IPv$FAM: nfqtrace --repeat 1 on the client, a ~6 s upload, switched to r2b after round 3"
  DATA="$NET_TMP/data$FAM.bin"
  make_data "$DATA" $KIB   # 8 KiB every 50 ms (and a dd): ~6 s
  upload_server "$SRV" $FAM $PORT
  require "nfqtrace starts and installs its rules" \
    nfqtrace_start "nfq$FAM" "$CLI" "$NFQ" --dport $PORT --repeat 1 --format json
  OUT=${BG_OUT[nfq$FAM]}
  upload_start "up$FAM" "$CLI" $FAM "$S_ADDR" $PORT "$DATA" 8192 0.05
  t0=$(date +%s%N)
  SWITCHED=0 BEFORE=0
  if wait_until 10 rounds_at_least "$OUT" 3; then
    ns_exec "$R1" ip -"$FAM" route replace "$(link_net $FAM 1 4)" via "$R2B_ADDR"
    ns_exec "$R3" ip -"$FAM" route replace "$(link_net $FAM 1 1)" via "$(link_addr $FAM 2 2 1)"
    BEFORE=$(max_round "$OUT") SWITCHED=1
    log "switched r1 and r3 to r2b after round $BEFORE, $(( ($(date +%s%N) - t0) / 1000000 )) ms into the upload"
  fi
  require "IPv$FAM: three rounds ended before the upload did (route switched)" test $SWITCHED -eq 1
  check "IPv$FAM: upload client exits 0" bg_wait "up$FAM" 30
  log "upload over after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  check "IPv$FAM: upload arrived complete" upload_wait $PORT 1 $((KIB * 1024)) 10
  check "IPv$FAM: upload sha256 matches end to end" test "$(upload_received_shas $PORT)" = "$(sha_of "$DATA")"
  bg_signal "nfq$FAM" INT
  rc=0; nfqtrace_wait "nfq$FAM" 5 || rc=$?
  show_file "nfqtrace stderr" "${BG_ERR[nfq$FAM]}" 10
  check "IPv$FAM: nfqtrace exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM: no nfqtrace rule left in cli" no_nfqtrace_rules "$CLI"
  bg_stop "upload-server-$PORT"

  section "IPv$FAM: traceroute -T after the switch (via r2b)"
  { echo "1 $(link_addr $FAM 1 1 2)"; echo "2 $R2B_ADDR"; echo "3 $R3B_ADDR"; echo "4 $S_ADDR"; } >"$NET_TMP/tr-after$FAM.want"
  traceroute_hops "$CLI" $FAM "$S_ADDR" $PORT "$NET_TMP/tr-after$FAM"
  show_file "traceroute -T from the client" "$NET_TMP/tr-after$FAM.raw"
  check "IPv$FAM: traceroute -T after the switch goes via r2b (harness sanity)" \
    same_hops "hops" "$NET_TMP/tr-after$FAM.want" "$NET_TMP/tr-after$FAM"

  section "IPv$FAM: the rounds and the path change"
  show_nfq_output "$OUT" | grep -v '    hop ' || true
  PCS=$(path_changes "$OUT")
  echo "--- path_change lines"; [[ -n $PCS ]] && sed 's/^/    /' <<<"$PCS" || echo "    (none)"
  check "IPv$FAM: output is JSON Lines" json_lines_valid "$OUT"
  check "IPv$FAM: hop lines are the trace's replies" hop_lines_match_traces "$OUT"
  n_rounds=$(trace_records "$OUT" | wc -l)
  check "IPv$FAM: several rounds of one flow (got $n_rounds, rounds $(trace_records "$OUT" | jq -r .round | paste -sd,))" \
    test "$n_rounds" -ge 5 -a "$(trace_records "$OUT" | jq -r '.flow | tojson' | sort -u | wc -l)" -eq 1
  FIRST=$(trace_records "$OUT" | sed -n 1p)
  LAST=$(trace_records "$OUT" | jq -c 'select(.reason == "reached")' | sed -n '$p')
  [[ -n $FIRST ]] && check_trace "IPv$FAM round $(jq .round <<<"$FIRST") (before the switch)" "$FIRST" "$NET_TMP/tr-before$FAM" dup
  [[ -n $LAST ]] && check_trace "IPv$FAM round $(jq .round <<<"$LAST") (after the switch)" "$LAST" "$NET_TMP/tr-after$FAM" dup
  check "IPv$FAM: exactly one path_change line (got $(grep -c . <<<"$PCS" || true))" test "$(grep -c . <<<"$PCS" || true)" -eq 1
  PC=$(sed -n 1p <<<"$PCS")
  if [[ -n $PC ]]; then
    check "IPv$FAM: path_change of the upload's flow" json_true "$PC" \
      ".flow.src == \"$C_ADDR\" and .flow.dst == \"$S_ADDR\" and .flow.dport == $PORT"
    check "IPv$FAM: no path_change before the switch (its round $(jq .round <<<"$PC") > $BEFORE, the last round before)" \
      json_true "$PC" ".round > $BEFORE"
    check "IPv$FAM: previous_round = round - 1" json_true "$PC" '.previous_round == .round - 1'
    check "IPv$FAM: changes: ttl 2 from [$R2A_ADDR] to [$R2B_ADDR], ttl 3 from [$R3A_ADDR] to [$R3B_ADDR]" \
      json_true "$PC" ".changes == [{\"ttl\": 2, \"from\": [\"$R2A_ADDR\"], \"to\": [\"$R2B_ADDR\"]},
                                   {\"ttl\": 3, \"from\": [\"$R3A_ADDR\"], \"to\": [\"$R3B_ADDR\"]}]"
  fi
  PC_ROUND=1000000
  [[ -n $PC ]] && PC_ROUND=$(jq -r .round <<<"$PC")
  check "IPv$FAM: every round up to $BEFORE went via r2a, every complete one from $PC_ROUND on via r2b" \
    rounds_via "$OUT" "$BEFORE" "$PC_ROUND" "$R2A_ADDR" "$R2B_ADDR"
done
net_finish
