#!/usr/bin/env bash
# Forged and malformed ICMP during a trace. While nfqtrace traces a live
# upload (client — r1 — r2 — r3 (silent) — server, --timeout 4 so the probes
# to the gap at ttl 3 stay unanswered for seconds), an attacker in r2 floods
# the client with thousands of ICMP time-exceeded and destination-unreachable
# messages from a router that does not exist (203.0.113.66 /
# 2001:db8:ffff::66). They quote the traced flow exactly as an observer of
# its addresses and ports could (client port taken from `ss -tn`), with
# random sequence numbers, IP IDs / flow labels, IP lengths and quote sizes,
# some with an RFC 4884 extension; interleaved with malformed ones (no quote,
# cut IP headers, IHL 15 or 3, quoted length below the header or 65535,
# wrong IP version, UDP, later fragments, 9 extension headers, RFC 4884
# lengths too short / past the end, short or wrong-version extensions,
# garbage). The sender is tools/testnet/forge_icmp.cpp (raw socket, header
# included), built with the project into helpers/.
# Checks, IPv4 then IPv6: nfqtrace exits 0 by itself; its trace equals
# traceroute -T (the gap included: no hop invented there or anywhere), is
# reached with 3 probes per ttl; the fake address appears nowhere in its
# output; no reply of kind unreachable; replies matched (summary line) = the
# trace's ICMP replies; the summary's "ICMP unmatched" counts at least 90% of
# the forged messages that reached the client while it ran (iptables counter
# in the client's INPUT) and no more than all ICMP that reached it; the
# upload's sha256 matches; no rule is left. Harness sanity: >= 90% of the
# messages reached the client; the client's own TCP attributed >= 90% of the
# well-formed ones to the traced connection (TcpExt OutOfWindowIcmps: the
# quotes name the flow right, only the sequence numbers are wrong); the
# flood overlapped the trace and ended while nfqtrace still ran.
# (mock_nfqtrace.sh fails here: it counts no ICMP.)
#
# Then the same scenario with forged TCP instead: 10 RST and FIN+ACK
# segments "from the server" with random sequence numbers, which the
# client's TCP drops as out of window; the trace must not notice them either
# (reached, 3 probes per ttl, equal to traceroute -T), IPv4 and IPv6; and,
# with --repeat 3, one such RST between two rounds must not stop the rounds.
# SKIP_FORGED_TCP=1 leaves the TCP phases out.
#
# Then a flood that quotes consistently shifted numbers with guessed IP IDs,
# aimed at the learning of sequence-shifting firewalls (issue 10, item 1: a
# quote naming no probe is held under the shift that would make it name one,
# with the same IP length, IPv4 ID and quoted payload, until replies for two
# different probes agree). The forger in r2 sniffs the traced connection's
# data segments (it sees the sequence number on the wire, as an on-path
# observer would: the probes copy bytes of the first data segment) and sends
# 4000 time-exceeded errors in 3 s from 203.0.113.77 / 2001:db8:ffff::77
# that quote the flow with that segment's sequence number, kept for the
# whole flood, + one constant random shift + a sweep of -64..64, so that every
# quote sits where a probe would be, shifted alike; IP lengths of
# probes with 1..16 payload bytes in turn, random IP IDs and 8-byte quotes
# (IPv4), or the whole made-up packet with the flow's TCP header and random
# payload bytes (IPv6). Checks, IPv4 then IPv6: the trace equals traceroute
# -T (the silent ttl 3 stays silent), is reached with 3 probes per ttl, has
# no "rewrites" and no reply listing tcp.seq in its changes; the fake
# address appears nowhere in the output; replies matched (summary) = the
# trace's ICMP replies; the upload's sha256 matches, no rule is left.
# Harness: the forger saw the flow and sent everything while nfqtrace ran,
# >= 90% of the messages reached the client.
#
# Keeping the trace running: the silent r3 sits below the server, which
# answers, and a silent hop below answering ones is taken for silent after
# ~3 round trips of the slowest reply (+10 ms), not at --timeout. So r3 also
# holds every packet it forwards 700 ms (both ways: the server's answers
# come back through it), which makes the server's RTT >= 1.4 s and 3 of it
# beyond the 4 s timeout: the gap at ttl 3 stays unanswered for the whole
# timeout again, as the flood needs, and the trace still reaches the server
# and equals traceroute -T. (r3's own ICMP would not be delayed: a probe
# expiring there never reaches the FORWARD hook.) The delay is lifted for
# the --repeat phase, which uses --timeout 1 and needs no gap held open.
# Usage: bash test_forged_icmp.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init forged_icmp
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
net_helpers "$NFQ"
FORGE=$(net_helper forge_icmp) || exit 1

FAKE4=203.0.113.66 FAKE6=2001:db8:ffff::66
VALID=4000 MALFORMED=640 FLOOD_S=3   # per family: ~1500 messages a second

R3_DELAY_MS=700   # see the top: 3 x (2 x 700 ms) >= --timeout 4
section "network: client — r1 — r2 (attacker) — r3 (silent, ${R3_DELAY_MS} ms each way) — server"
net_build 3
net_silence "$(net_router 3)"
net_icmp_ratelimit_off
net_delay "$(net_router 3)" $R3_DELAY_MS
net_describe 4
CLI=$(net_client) SRV=$(net_server) ATTACKER=$(net_router 2)

# counter_rules NS FAM FAKE: two counting rules (no target) in the client's
# INPUT chain: ICMP from the fake router, other ICMP.
counter_rules() {
  local ns=$1 fam=$2 fake=$3
  if [[ $fam == 4 ]]; then
    ns_exec "$ns" iptables -A INPUT -p icmp -s "$fake" -m comment --comment forged-in
    ns_exec "$ns" iptables -A INPUT -p icmp ! -s "$fake" -m comment --comment genuine-in
  else
    ns_exec "$ns" ip6tables -A INPUT -p icmpv6 -s "$fake" -m comment --comment forged-in
    ns_exec "$ns" ip6tables -A INPUT -p icmpv6 ! -s "$fake" -m comment --comment genuine-in
  fi
}
# counter NS FAM COMMENT: packets counted by that rule.
counter() {
  local tool=iptables; [[ $2 == 6 ]] && tool=ip6tables
  ns_exec "$1" "$tool" -nvxL INPUT | awk -v c="$3" 'index($0, "/* " c " */") { print $1; exit }'
}
# flow_sport NS DST PORT: the local port of the established connection to
# DST:PORT (what an observer of the flow learns).
flow_sport() {
  ns_exec "$1" ss -Htn state established "( dport = :$3 )" | awk '{ print $3 }' | sed 's/.*://' | head -n1
}
has_flow() { [[ -n $(flow_sport "$@") ]]; }
# tcpext NS FIELD: a TcpExt counter of the namespace (/proc/net/netstat).
tcpext() {
  ns_exec "$1" cat /proc/net/netstat | awk -v f="$2" '$1 == "TcpExt:" && !h { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1; next }
    $1 == "TcpExt:" && h { print $c + 0; exit }'
}
has_trace_record() { grep -q '"type":"trace"' "$1"; }
# start_held_upload NAME FAM PORT DATA INTERVAL_S NFQTRACE_ARGS...: nfqtrace
# NAME on the client with NFQTRACE_ARGS, then an upload of DATA to PORT whose
# connection opens at once but whose bytes (8 KiB every INTERVAL_S) wait for
# `release_upload NAME`: the test decides what is under way when the trace
# starts. Sets FLOW_SPORT, the connection's client port.
start_held_upload() {
  local name=$1 fam=$2 port=$3 data=$4 interval=$5 dst; shift 5
  dst=$(net_server_addr "$fam")
  require "nfqtrace starts and installs its rules" nfqtrace_start "$name" "$CLI" "$NFQ" "$@"
  bg_start "up-$name" ip netns exec "$CLI" bash -c \
    "{ while [ ! -e '$NET_TMP/go-$name' ]; do sleep 0.05; done; bash '$NET_TMP/slowcat.sh' '$data' 8192 $interval; } | socat -u - '$(connect_addr "$fam" "$dst" "$port")'"
  require "the upload's connection is established (ss -tn)" wait_until 5 has_flow "$CLI" "$dst" "$port"
  FLOW_SPORT=$(flow_sport "$CLI" "$dst" "$port")
}
release_upload() { touch "$NET_TMP/go-$1"; }
epoch_of() { date -u -d "$1" +%s.%N; }
summary_count() { { grep -oE "[0-9]+ $2" "$1" || true; } | tail -n1 | cut -d' ' -f1; }
no_fake_addr() {
  local n; n=$(grep -c -F "$2" "$1" || true)
  (( n == 0 )) && return 0
  echo "  $n output lines name $2:"; grep -F "$2" "$1" | head -5 | cut -c1-200 | sed 's/^/    /'; return 1
}

# phase ATTACK(icmp|tcp) FAM PORT: one traced upload under attack.
phase() {
  local attack=$1 fam=$2 port=$3 name="nfq-$1$2"
  local fake=$FAKE4; [[ $fam == 6 ]] && fake=$FAKE6
  local src dst data="$NET_TMP/data-$name.bin" sport oow_before oow label
  src=$(net_client_addr "$fam") dst=$(net_server_addr "$fam")
  label="IPv$fam $attack"
  if [[ $attack == icmp ]]; then
    section "$label: nfqtrace on the client (--dport $port), 256 KiB upload, forged ICMP from $fake"
  else
    section "$label: nfqtrace on the client (--dport $port), 256 KiB upload, forged RST/FIN from the server's address"
  fi
  make_data "$data" 256
  upload_server "$SRV" "$fam" "$port"
  [[ $attack == icmp ]] && counter_rules "$CLI" "$fam" "$fake"
  # The trace starts while the attack is already arriving. 8 KiB every
  # 0.25 s: 8 s.
  start_held_upload "$name" "$fam" "$port" "$data" 0.25 \
    --dport "$port" --mode dup --count 1 --format json --timeout 4
  sport=$FLOW_SPORT
  oow_before=$(tcpext "$CLI" OutOfWindowIcmps)
  if [[ $attack == icmp ]]; then
    log "flow $src:$sport -> $dst:$port; flooding from r2: $VALID forged + $MALFORMED malformed in $FLOOD_S s"
    bg_start "forge-$name" ip netns exec "$ATTACKER" "$FORGE" "$fam" "$fake" "$src" "$src" "$dst" "$sport" "$port" \
      $VALID $MALFORMED $FLOOD_S $((RANDOM * 32768 + RANDOM))
  else
    log "flow $src:$sport -> $dst:$port; from r2: 10 RST and FIN+ACK as $dst:$port, random sequence numbers, in 2 s"
    bg_start "forge-$name" ip netns exec "$ATTACKER" "$FORGE" tcp "$fam" "$dst" "$src" "$port" "$sport" 10 2 \
      $((RANDOM * 32768 + RANDOM))
  fi
  sleep 0.5
  release_upload "$name"
  check "the forger sent everything (exit 0)" bg_wait "forge-$name" 30
  check "nfqtrace still running when the attack ended (harness: it saw all of it)" bg_running "$name"
  show_file "forger" "${BG_OUT[forge-$name]}" 40
  show_file "forger stderr" "${BG_ERR[forge-$name]}" 5
  if [[ $attack == icmp ]]; then
    oow=$(( $(tcpext "$CLI" OutOfWindowIcmps) - oow_before ))
    check "$label: the client's TCP matched $oow forged errors to the traced connection and ignored them as out of window (TcpExt OutOfWindowIcmps >= 90% of the $VALID well-formed ones: the quotes name the flow right)" \
      test "$oow" -ge $((VALID * 9 / 10))
  fi
  check_nfqtrace_exit "$name" 30
  # ICMP that reached the client while nfqtrace ran (traceroute -T comes later).
  local forged_in=0 genuine_in=0
  if [[ $attack == icmp ]]; then
    forged_in=$(counter "$CLI" "$fam" forged-in) genuine_in=$(counter "$CLI" "$fam" genuine-in)
  fi
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  check "upload client exits 0 (the connection was not hurt)" bg_wait "up-$name" 30
  check "upload arrived complete" upload_wait "$port" 1 $((256 * 1024)) 10
  check "upload sha256 matches end to end" test "$(upload_received_shas "$port")" = "$(sha_of "$data")"

  section "$label: reference and comparison"
  reference_trace client "$fam" "$port" "$NET_TMP/tr-$name"
  check_one_trace "$name" "$label trace" "$NET_TMP/tr-$name" dup "$src" "$dst" "$port" "$sport"
  local out=${BG_OUT[$name]} err=${BG_ERR[$name]} rec
  show_file "nfqtrace stderr" "$err" 10
  rec=$(trace_records "$out" | head -n1)
  check "$label: 3 probes sent to every ttl up to the server (got $(jq -c '[.hops[].probes]' <<<"${rec:-{\}}" 2>/dev/null))" \
    json_true "$rec" '[.hops[].probes] | length > 0 and all(. == 3)'
  bg_stop "upload-server-$port"
  [[ $attack == icmp ]] || return 0

  check "$label: $fake appears nowhere in nfqtrace's output" no_fake_addr "$out" "$fake"
  check "$label: no reply of kind unreachable (only forged ones were sent)" \
    json_true "$rec" '[.hops[].replies[] | select(.kind == "unreachable")] | length == 0'
  # The flood overlapped the trace (harness sanity).
  local sent_valid sent_bad f_start f_end t_start t_end during
  read -r _ _ sent_valid _ sent_bad _ _ _ f_start _ f_end < <(head -n1 "${BG_OUT[forge-$name]}")
  t_start=$(epoch_of "$(jq -r .start <<<"$rec")") t_end=$(epoch_of "$(jq -r .end <<<"$rec")")
  during=$(awk -v fs="$f_start" -v fe="$f_end" -v ts="$t_start" -v te="$t_end" -v n=$((sent_valid + sent_bad)) \
    'BEGIN { a = (fs > ts ? fs : ts); b = (fe < te ? fe : te); d = fe - fs; printf "%d", (b > a && d > 0) ? n * (b - a) / d : 0 }')
  log "flood $f_start..$f_end, trace $t_start..$t_end: about $during messages sent while the trace ran"
  check "$label: at least 1000 forged messages sent while the trace ran (harness; ~$during)" test "$during" -ge 1000

  local unmatched matched icmp_replies
  unmatched=$(summary_count "$err" "ICMP unmatched") matched=$(summary_count "$err" "replies matched")
  icmp_replies=$(jq '[.hops[].replies[] | select(.kind != "destination")] | length' <<<"$rec")
  log "sent $((sent_valid + sent_bad)), reached the client $forged_in (+ $genuine_in genuine ICMP); nfqtrace: $matched matched, $unmatched unmatched"
  check "$label: the forged messages reached the client (counter $forged_in >= 90% of $((sent_valid + sent_bad)) sent)" \
    test "$forged_in" -ge $(((sent_valid + sent_bad) * 9 / 10))
  check "$label: summary line has the ICMP counts" test -n "$unmatched" -a -n "$matched"
  check "$label: replies matched (${matched:-?}) = the trace's ICMP replies ($icmp_replies)" test "${matched:-x}" = "$icmp_replies"
  check "$label: ICMP unmatched (${unmatched:-?}) >= 90% of forged arrivals ($forged_in)" \
    test "${unmatched:-0}" -ge $((forged_in * 9 / 10))
  check "$label: ICMP unmatched (${unmatched:-?}) <= all ICMP arrivals ($((forged_in + genuine_in)))" \
    test "${unmatched:-0}" -le $((forged_in + genuine_in))
  # Each refused message is counted with its reason; the reasons add up.
  local refused reasons_sum
  refused=$(grep -m1 '^nfqtrace: refused:' "$err" || true)
  echo "  ${refused:-(no refused line)}"
  reasons_sum=$(grep -m1 '^nfqtrace: refused:' "$err" | tr ';' '\n' |
    grep -E 'ICMP naming no probe|unreadable ICMP' | grep -oE '[a-z_]+ [0-9]+' | awk '{ n += $2 } END { print n + 0 }')
  check "$label: the refused line gives reasons (no_such_probe among them)" grep -q 'no_such_probe [0-9]' <<<"$refused"
  check "$label: the ICMP reasons add up to ICMP unmatched ($reasons_sum = ${unmatched:-?})" \
    test "$reasons_sum" = "${unmatched:-x}"
}

# repeat_phase FAM PORT: --repeat 3 during an 8 s upload; one forged RST
# (random sequence number) 0.3 s after the first round ended, while the
# flow's packets skip the queue until its next round; rounds must go on,
# numbered 1, 2, 3 (not restarted).
repeat_phase() {
  local fam=$1 port=$2 name="nfq-repeat$1" src dst sport data t_rst n_after rounds
  src=$(net_client_addr "$fam") dst=$(net_server_addr "$fam")
  data="$NET_TMP/data-$name.bin"
  section "IPv$fam: --repeat 3 during an 8 s upload, one forged RST between rounds 1 and 2"
  make_data "$data" 640
  upload_server "$SRV" "$fam" "$port"
  start_held_upload "$name" "$fam" "$port" "$data" 0.1 \
    --dport "$port" --mode dup --repeat 3 --format json --timeout 1
  sport=$FLOW_SPORT
  release_upload "$name"
  check "a first round ends within 10 s" wait_until 10 has_trace_record "${BG_OUT[$name]}"
  sleep 0.3
  t_rst=$(date +%s.%N)
  log "flow $src:$sport -> $dst:$port; $(trace_records "${BG_OUT[$name]}" | wc -l) round(s) so far; one forged RST from r2"
  check "the forger sent the RST" ns_exec "$ATTACKER" "$FORGE" tcp "$fam" "$dst" "$src" "$port" "$sport" 1 0 $RANDOM
  check "upload client exits 0 (the connection was not hurt)" bg_wait "up-$name" 30
  bg_signal "$name" INT
  check_nfqtrace_exit "$name" 10
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  show_nfq_output "${BG_OUT[$name]}"
  n_after=0
  while read -r start; do
    [[ $(awk -v a="$(epoch_of "$start")" -v b="$t_rst" 'BEGIN { print (a > b) }') == 1 ]] && n_after=$((n_after + 1))
  done < <(trace_records "${BG_OUT[$name]}" | jq -r .start)
  check "IPv$fam repeat: rounds went on after the forged RST ($n_after started after it; 2 expected)" test "$n_after" -ge 1
  rounds=$(trace_records "${BG_OUT[$name]}" | jq -r .round | tr '\n' ' ')
  check "IPv$fam repeat: rounds numbered 1, 2, 3... (got: $rounds)" \
    test "$rounds" = "$(seq -s ' ' 1 "$(wc -w <<<"$rounds")") "
  bg_stop "upload-server-$port"
}

# shift_phase FAM PORT: the flood of consistently shifted quotes (see the top).
SHIFT_FAKE4=203.0.113.77 SHIFT_FAKE6=2001:db8:ffff::77 SHIFT_COUNT=4000 SHIFT_SWEEP=64
shift_phase() {
  local fam=$1 port=$2 name="nfq-shifted$1" tool=iptables proto=icmp
  local fake=$SHIFT_FAKE4; [[ $fam == 6 ]] && fake=$SHIFT_FAKE6 tool=ip6tables proto=icmpv6
  local src dst data="$NET_TMP/data-$name.bin" sport offset seed label="IPv$fam shifted flood"
  src=$(net_client_addr "$fam") dst=$(net_server_addr "$fam")
  offset=$(( (RANDOM << 17 | RANDOM << 2 | RANDOM & 3) & 0xffffffff )) seed=$((RANDOM * 32768 + RANDOM))
  section "$label: nfqtrace on the client (--dport $port), 256 KiB upload, shifted quotes from $fake"
  make_data "$data" 256
  upload_server "$SRV" "$fam" "$port"
  ns_exec "$CLI" "$tool" -A INPUT -p "$proto" -s "$fake" -m comment --comment shifted-in
  start_held_upload "$name" "$fam" "$port" "$data" 0.25 \
    --dport "$port" --mode dup --count 1 --format json --timeout 4
  sport=$FLOW_SPORT
  log "flow $src:$sport -> $dst:$port; from r2: $SHIFT_COUNT time-exceeded in $FLOOD_S s quoting the first data segment's sequence number + $offset + (-$SHIFT_SWEEP..$SHIFT_SWEEP), seed $seed"
  bg_start "forge-$name" ip netns exec "$ATTACKER" "$FORGE" shifted "$fam" "$fake" "$src" "$src" "$dst" "$sport" "$port" \
    $SHIFT_COUNT $FLOOD_S "$seed" "$offset" $SHIFT_SWEEP 1 16 first
  sleep 0.3   # its packet socket is open: the first data segment is not missed
  release_upload "$name"
  check "the forger saw the flow and sent everything (exit 0)" bg_wait "forge-$name" 30
  check "nfqtrace still running when the flood ended (harness: it saw all of it)" bg_running "$name"
  show_file "forger" "${BG_OUT[forge-$name]}" 5
  show_file "forger stderr" "${BG_ERR[forge-$name]}" 5
  check_nfqtrace_exit "$name" 30
  local forged_in; forged_in=$(counter "$CLI" "$fam" shifted-in)
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  check "upload client exits 0 (the connection was not hurt)" bg_wait "up-$name" 30
  check "upload arrived complete" upload_wait "$port" 1 $((256 * 1024)) 10
  check "upload sha256 matches end to end" test "$(upload_received_shas "$port")" = "$(sha_of "$data")"

  section "$label: reference and comparison"
  reference_trace client "$fam" "$port" "$NET_TMP/tr-$name"
  check_one_trace "$name" "$label trace" "$NET_TMP/tr-$name" dup "$src" "$dst" "$port" "$sport"
  local out=${BG_OUT[$name]} err=${BG_ERR[$name]} rec
  show_file "nfqtrace stderr" "$err" 10
  rec=$(trace_records "$out" | head -n1)
  [[ -n $rec ]] || rec='{"hops":[]}'   # (the checks above said so already)
  check "$label: 3 probes sent to every ttl up to the server (got $(jq -c '[.hops[].probes]' <<<"$rec"))" \
    json_true "$rec" '[.hops[].probes] | length > 0 and all(. == 3)'
  check "$label: $fake appears nowhere in nfqtrace's output" no_fake_addr "$out" "$fake"
  check "$label: no rewrites (got $(jq -c '.rewrites' <<<"$rec"))" json_true "$rec" '(.rewrites // []) == []'
  check "$label: no reply lists tcp.seq in its changes" \
    json_true "$rec" '[.hops[].replies[] | select((.changes // []) | index("tcp.seq"))] | length == 0'
  local sent f_start f_end t_end matched icmp_replies
  read -r _ _ sent _ _ _ f_start _ f_end < <(head -n1 "${BG_OUT[forge-$name]}")
  t_end=$(epoch_of "$(jq -r '.end // empty' <<<"$rec")" 2>/dev/null || echo 0)
  check "$label: the flood began before the trace ended (harness; flood ${f_start:-?}..${f_end:-?}, trace end $t_end)" \
    awk -v fs="${f_start:-0}" -v te="$t_end" 'BEGIN { exit !(fs > 0 && fs < te) }'
  log "sent ${sent:-?}, reached the client $forged_in; nfqtrace: $(grep -m1 -oE '[0-9]+ replies matched, [0-9]+ ICMP unmatched' "$err" || true)"
  echo "  $(grep -m1 '^nfqtrace: refused:' "$err" || echo '(no refused line)')"
  check "$label: the forged messages reached the client (counter $forged_in >= 90% of ${sent:-?} sent)" \
    test "$forged_in" -ge $(( ${sent:-1} * 9 / 10 )) -a "${sent:-0}" -gt 0
  matched=$(summary_count "$err" "replies matched")
  icmp_replies=$(jq '[.hops[].replies[] | select(.kind != "destination")] | length' <<<"$rec")
  check "$label: replies matched (${matched:-?}) = the trace's ICMP replies ($icmp_replies)" test "${matched:-x}" = "$icmp_replies"
  bg_stop "upload-server-$port"
}

phase icmp 4 5104
phase icmp 6 5106
shift_phase 4 5404
shift_phase 6 5406
if [[ ${SKIP_FORGED_TCP:-0} != 1 ]]; then
  phase tcp 4 5204
  phase tcp 6 5206
  # No gap to hold open in the --repeat phase (--timeout 1): r3 forwards
  # at once again (the server's RTT of 1.4 s would exceed that timeout).
  ns_exec "$(net_router 3)" iptables -t mangle -D FORWARD -j NFQUEUE --queue-num 0
  ns_exec "$(net_router 3)" ip6tables -t mangle -D FORWARD -j NFQUEUE --queue-num 0
  bg_stop "delayq-r3"
  repeat_phase 4 5304
fi
net_finish
