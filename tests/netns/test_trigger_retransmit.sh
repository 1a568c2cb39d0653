#!/usr/bin/env bash
# --trigger retransmit (issue 10): a connection is traced from the moment its
# sender retransmits; before that its packets skip the queue and are only
# copied to nfqtrace (NFLOG).
#
#   client — r1 — r2 ~~lossy~~ r3 — server
#
# r2 drops packets at random (iptables statistic, p = LOSS) on its link toward
# r3, both ways: the client's data and the probes toward r3 and the server,
# and whatever comes back (ACKs, D-SACKs, r3's time-exceeded). Per family, an
# upload of several seconds with nfqtrace on the client --trigger retransmit
# --repeat 1 --ttlrepeat 10 --format json:
#   - no probe leaves before the connection's first retransmission (capture at
#     the client: probes are the segments with TTL <= 30, the connection's
#     own have 64; a retransmission is a TTL-64 data segment starting below the
#     highest sequence number sent before it);
#   - the summary counts the watched connection, packets copied past the
#     queue, retransmissions seen and traces they began;
#   - every trace that reached the server: hops equal traceroute -T (run
#     once the loss is off); at least one has loss_from_ttl 3 (r3, the first
#     hop beyond the lossy link), none has a loss_from_ttl below 3;
#   - the live hop lines and the traces' replies agree, both ways (under
#     loss the first D-SACK of a round may answer a probe beyond the server's
#     distance, its TTL-4 probe lost: the destination's hop lines wait till no
#     lower TTL can still reach it, so none names a TTL the trace leaves out);
#   - the upload intact, nfqtrace exits 0 on SIGINT, no rule left.
# Then a control without loss: a clean upload of a few seconds is watched but
# never retransmits, so no trace (no output but the meta line); nfqtrace exits 0 on
# SIGTERM, no rule left.
# Usage: bash test_trigger_retransmit.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init trigger_retransmit tcpdump
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "--trigger retransmit, loss_from_ttl"
LOSS=0.2 KIB=512

section "network: client — r1 — r2 ~(loss $LOSS each way)~ r3 — server"
net_build 3
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) R2=$(net_router 2)

loss_on() {
  local ipt
  for ipt in iptables ip6tables; do
    ns_exec "$R2" $ipt -A FORWARD -o srvside -m statistic --mode random --probability $LOSS -j DROP
    ns_exec "$R2" $ipt -A FORWARD -i srvside -m statistic --mode random --probability $LOSS -j DROP
  done
}
loss_off() { ns_exec "$R2" iptables -F FORWARD; ns_exec "$R2" ip6tables -F FORWARD; }
loss_drops() { ns_exec "$R2" "$1" -L FORWARD -v -x -n | awk '$3 == "DROP" { n += $1 } END { print n + 0 }'; }

# capture_packets PCAP: one line per packet, epoch time first. tcpdump -v
# prints the IP header fields on the first line of a packet and the TCP
# ones on the same line (IPv6) or the next (IPv4): joined.
capture_packets() {
  tcpdump -nn -tt -S -v -r "$1" 2>/dev/null | awk '
    /^[0-9]+\.[0-9]+ / { if (line != "") print line; line = $0; next }
    { line = line " " $0 }
    END { if (line != "") print line }'
}

# first_probe_and_rtx PCAP FAM: "<time of the first probe> <time of the first
# retransmission>" (epoch seconds, "none" for either missing), from a capture
# of what the client sent toward the server.
first_probe_and_rtx() {
  local ttl=ttl
  [[ $2 == 6 ]] && ttl=hlim
  capture_packets "$1" | awk -v ttlw="$ttl" '
    { handle($0) }
    END { printf "%s %s\n", (probe == "" ? "none" : probe), (rtx == "" ? "none" : rtx) }
    function handle(l,   t, ttl, m, s, e) {
      t = l; sub(/ .*/, "", t)
      if (!match(l, ttlw " [0-9]+")) return
      ttl = substr(l, RSTART + length(ttlw) + 1, RLENGTH - length(ttlw) - 1) + 0
      if (ttl <= 30) { if (probe == "") probe = t; return }
      if (!match(l, /seq [0-9]+:[0-9]+/)) return
      m = substr(l, RSTART + 4, RLENGTH - 4); split(m, se, ":"); s = se[1] + 0; e = se[2] + 0
      # sequence numbers compare modulo 2^32
      if (have && ((maxend - s + 4294967296) % 4294967296) > 0 && ((maxend - s + 4294967296) % 4294967296) < 2147483648) {
        if (rtx == "") rtx = t
      }
      if (!have || ((e - maxend + 4294967296) % 4294967296) < 2147483648) { maxend = e; have = 1 }
    }'
}
# summary_count ERRFILE WHAT: the number before WHAT in the --trigger
# retransmit summary line ("N connections watched", ...).
summary_count() {
  grep -F -- '--trigger retransmit:' "$1" | grep -oE "[0-9]+ $2" | head -n1 | cut -d' ' -f1
}
# The two halves of lib.sh's hop_lines_match_traces, each saying what is
# missing where: a reply is "round ttl kind addr time".
hop_line_replies() {
  jq -R -r 'fromjson? | select(type == "object" and .type == "hop" and .late != true)
             | "\(.round) \(.ttl) \(.kind) \(.addr) \(.time)"' "$1" | sort
}
trace_reply_list() {
  trace_records "$1" | jq -r '.round as $r | .hops[] | .ttl as $t | .replies[] | "\($r) \($t) \(.kind) \(.addr) \(.time)"' | sort
}
trace_replies_were_hop_lines() {
  local missing; missing=$(comm -13 <(hop_line_replies "$1") <(trace_reply_list "$1"))
  [[ -z $missing ]] && return 0
  echo "  trace replies (round ttl kind addr time) without a hop line:"; sed 's/^/    /' <<<"$missing"; return 1
}
hop_lines_in_traces() {
  local extra line r
  extra=$(comm -23 <(hop_line_replies "$1") <(trace_reply_list "$1"))
  [[ -z $extra ]] && return 0
  echo "  hop lines (round ttl kind addr time) that are no reply of their round's trace:"
  while IFS= read -r line; do
    r=${line%% *}
    echo "    $line   (round $r's trace: $(trace_records "$1" | jq -r --argjson r "$r" 'select(.round == $r)
      | "reason \(.reason), destination at ttl \(.forward_hops // "-"), hops " + ([.hops[] | "\(.ttl):\(.answered)/\(.probes)"] | join(" "))'))"
  done <<<"$extra"
  return 1
}
# round_packets TRACE_RECORD FAM: what the client sent and received during
# that round (from 50 ms before it to 300 ms after), to tell a failing
# round's cause from the test's log: probes (TTL <= 30) with their TTL and
# bytes, the connection's own segments, the peer's ACKs with their SACK blocks.
round_packets() {
  local from to cap
  from=$(date -d "$(jq -r .start <<<"$1")" +%s.%N) to=$(date -d "$(jq -r .end <<<"$1")" +%s.%N)
  echo "  round $(jq .round <<<"$1")'s packets at the client ($from .. $to):"
  for cap in "cap$2" "back$2"; do capture_packets "$NET_TMP/$cap.pcap"; done | sort -n | awk -v from="$from" -v to="$to" '
    $1 >= from - 0.05 && $1 <= to + 0.3 {
      ttl = ""; if (match($0, /(ttl|hlim) [0-9]+/)) ttl = substr($0, RSTART, RLENGTH)
      seq = ""; if (match($0, /seq [0-9]+:[0-9]+/)) seq = substr($0, RSTART, RLENGTH)
      ack = ""; if (match($0, /ack [0-9]+/)) ack = substr($0, RSTART, RLENGTH)
      sack = ""; if (match($0, /sack [0-9]+ [^]]*/)) sack = substr($0, RSTART, RLENGTH)
      flags = ""; if (match($0, /Flags \[[^]]*\]/)) flags = substr($0, RSTART, RLENGTH)
      printf "    %+.6f %s %s %s %s %s\n", $1 - from, ttl, flags, seq, ack, sack
    }' | head -n 300
}

# loss_ok FILE: at least one trace with loss_from_ttl 3, none below 3.
loss_ok() {
  local got; got=$(trace_records "$1" | jq -r '.loss_from_ttl // "none"' | paste -sd,)
  echo "  loss_from_ttl per trace: $got"
  trace_records "$1" | jq -e -s '(map(select(.loss_from_ttl == 3)) | length > 0)
                                 and (map(select(.loss_from_ttl != null and .loss_from_ttl < 3)) | length == 0)' >/dev/null
}

for FAM in 4 6; do
  PORT=$((5400 + FAM))
  C_ADDR=$(net_client_addr $FAM) S_ADDR=$(net_server_addr $FAM)
  PROTO=$([[ $FAM == 4 ]] && echo ip || echo ip6)
  section "IPv$FAM: a $KIB KiB upload across the lossy link, nfqtrace --trigger retransmit --repeat 1 --ttlrepeat 10"
  net_describe $FAM
  loss_on
  DATA="$NET_TMP/data$FAM.bin"
  make_data "$DATA" $KIB
  upload_server "$SRV" $FAM $PORT
  capture_start "cap$FAM" "$CLI" fwd "$PROTO and tcp and dst port $PORT"
  capture_start "back$FAM" "$CLI" fwd "$PROTO and tcp and src port $PORT"
  require "nfqtrace starts and installs its rules" nfqtrace_start "nfq$FAM" "$CLI" "$NFQ" \
    --dport $PORT --trigger retransmit --repeat 1 --ttlrepeat 10 --format json
  OUT=${BG_OUT[nfq$FAM]}
  t0=$(date +%s%N)
  upload_start "up$FAM" "$CLI" $FAM "$S_ADDR" $PORT "$DATA" 8192 0.05
  check "IPv$FAM: upload client exits 0" bg_wait "up$FAM" 40
  log "upload over after $(( ($(date +%s%N) - t0) / 1000000 )) ms; r2 dropped $(loss_drops iptables) IPv4 and $(loss_drops ip6tables) IPv6 packets"
  # socat is done once the kernel has its last bytes; the kernel may still
  # be retransmitting them, backing off for seconds when the loss hits a
  # run of them.
  check "IPv$FAM: upload arrived complete despite the loss" upload_wait $PORT 1 $((KIB * 1024)) 60
  check "IPv$FAM: upload sha256 matches end to end" test "$(upload_received_shas $PORT)" = "$(sha_of "$DATA")"
  bg_signal "nfq$FAM" INT
  rc=0; nfqtrace_wait "nfq$FAM" 5 || rc=$?
  capture_stop "cap$FAM"
  capture_stop "back$FAM"
  loss_off
  bg_stop "upload-server-$PORT"
  show_file "nfqtrace stderr" "${BG_ERR[nfq$FAM]}" 10
  check "IPv$FAM: nfqtrace exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM: no nfqtrace rule left in cli" no_nfqtrace_rules "$CLI"

  section "IPv$FAM: no probe before the first retransmission"
  read -r T_PROBE T_RTX < <(first_probe_and_rtx "$NET_TMP/cap$FAM.pcap" $FAM)
  echo "  connection from $(tcpdump -nn -tt -r "$NET_TMP/cap$FAM.pcap" 2>/dev/null | head -n1 | cut -d' ' -f1):" \
       "first retransmission at $T_RTX, first probe at $T_PROBE"
  check "IPv$FAM: the connection retransmitted (harness sanity)" test "$T_RTX" != none
  check "IPv$FAM: probes were sent" test "$T_PROBE" != none
  if [[ $T_RTX != none && $T_PROBE != none ]]; then
    check "IPv$FAM: the first probe ($T_PROBE) is not before the first retransmission ($T_RTX)" \
      awk -v p="$T_PROBE" -v r="$T_RTX" 'BEGIN { exit !(p >= r) }'
  fi
  ERR=${BG_ERR[nfq$FAM]}
  watched=$(summary_count "$ERR" "connections watched") copied=$(summary_count "$ERR" "of their packets copied")
  seen=$(summary_count "$ERR" "retransmissions seen") began=$(summary_count "$ERR" "traces began")
  ntr=$(trace_records "$OUT" | wc -l)
  echo "  summary: watched ${watched:-?}, copied ${copied:-?}, retransmissions ${seen:-?}, traces began ${began:-?}; trace records $ntr"
  check "IPv$FAM: summary: 1 connection watched" test "${watched:-0}" -eq 1
  check "IPv$FAM: summary: its packets were copied past the queue" test "${copied:-0}" -gt 0
  check "IPv$FAM: summary: retransmissions seen, traces began with one" test "${seen:-0}" -ge 1 -a "${began:-0}" -ge 1
  # A retransmission admits the flow; its round begins with the next packet
  # that comes through the queue. One just before the connection's FIN (or
  # before SIGINT, during a long retransmission timeout) begins none.
  check "IPv$FAM: one trace record per trace a retransmission began (got $ntr, began ${began:-?})" \
    test "$ntr" -ge 1 -a "$ntr" -eq "${began:-0}"

  section "IPv$FAM: the traces, compared with traceroute -T once the loss is off"
  reference_trace client $FAM $PORT "$NET_TMP/tr$FAM"
  show_nfq_output "$OUT" | grep -v '    hop ' || true
  trace_records "$OUT" | jq -r '"  round \(.round): \(.reason), ttl:answered/probes " +
    ([.hops[] | "\(.ttl):\(.answered)/\(.probes)"] | join(" "))'
  echo "  late hop lines (round/ttl/kind): $(jq -R -r 'fromjson? | select(type == "object" and .type == "hop"
    and .late == true) | "\(.round)/\(.ttl)/\(.kind)"' "$OUT" | paste -sd' ')"
  check "IPv$FAM: output is JSON Lines" json_lines_valid "$OUT"
  check "IPv$FAM: every reply of a trace was a hop line" trace_replies_were_hop_lines "$OUT"
  check "IPv$FAM: every hop line is a reply of its trace" hop_lines_in_traces "$OUT"
  check "IPv$FAM: every trace is of the upload's flow" test -z "$(trace_records "$OUT" |
    jq -r "select(.flow.src != \"$C_ADDR\" or .flow.dst != \"$S_ADDR\" or .flow.dport != $PORT) | .flow")"
  trace_records "$OUT" | jq -c 'select(.reason == "reached")' >"$NET_TMP/reached$FAM"
  check "IPv$FAM: at least one trace reached the server (got $(wc -l <"$NET_TMP/reached$FAM") of $ntr)" \
    test -s "$NET_TMP/reached$FAM"
  while IFS= read -r rec; do
    failed_before=$NET_CHECKS_FAILED
    check_trace "IPv$FAM round $(jq .round <<<"$rec")" "$rec" "$NET_TMP/tr$FAM" dup
    (( NET_CHECKS_FAILED == failed_before )) || round_packets "$rec" "$FAM"
  done <"$NET_TMP/reached$FAM"
  check "IPv$FAM: a trace with loss_from_ttl 3 (r3), none below" loss_ok "$OUT"
done

section "control: a clean upload under --trigger retransmit: nothing to trace"
FAM=4 PORT=5410
DATA="$NET_TMP/clean.bin"
make_data "$DATA" 384
upload_server "$SRV" $FAM $PORT
require "nfqtrace starts and installs its rules" nfqtrace_start nfqc "$CLI" "$NFQ" \
  --dport $PORT --trigger retransmit --repeat 1 --format json
upload_start upc "$CLI" $FAM "$(net_server_addr $FAM)" $PORT "$DATA" 8192 0.05
check "control: upload client exits 0" bg_wait upc 30
check "control: upload arrived complete" upload_wait $PORT 1 $((384 * 1024)) 10
check "control: upload sha256 matches end to end" test "$(upload_received_shas $PORT)" = "$(sha_of "$DATA")"
check "control: nfqtrace still running" bg_running nfqc
bg_signal nfqc TERM
rc=0; nfqtrace_wait nfqc 5 || rc=$?
show_file "nfqtrace stderr" "${BG_ERR[nfqc]}" 10
show_nfq_output "${BG_OUT[nfqc]}"
check "control: nfqtrace exits 0 on SIGTERM (exit status $rc)" test "$rc" -eq 0
check "control: no nfqtrace rule left in cli" no_nfqtrace_rules "$CLI"
check "control: no trace, no hop (the meta line only)" test "$(jq -R -r 'fromjson? | .type' "${BG_OUT[nfqc]}" | paste -sd,)" = meta
check "control: summary: the connection was watched, nothing retransmitted, no trace" \
  test "$(summary_count "${BG_ERR[nfqc]}" "connections watched")" = 1 \
    -a "$(summary_count "${BG_ERR[nfqc]}" "retransmissions seen")" = 0 \
    -a "$(summary_count "${BG_ERR[nfqc]}" "traces began")" = 0
net_finish
