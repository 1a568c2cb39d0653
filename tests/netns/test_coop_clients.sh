#!/usr/bin/env bash
# Several nfqtrace-clients at once against one nfqtrace-server: four
# concurrent clients in the SAME namespace (two over IPv4, two over IPv6),
# each with its own --queue-id (the rules of one must not disturb the
# others). A silent router on each path (r2 forward, b1 back) and a 3 s
# timeout keep every trace running for a while, so all four connections are
# served at the same time. The silent routers sit below answering hops (the
# traces must reach their peer), and a silent hop below answering ones is
# taken for silent after ~3 round trips of the slowest reply: so r3 also
# holds every packet it forwards 1 s (client to server only, the return path
# is b1 — b2). Both traces' slowest reply (the peer's: the forward probes
# and the client's answers to the reverse ones cross r3) is then >= 1 s, 3
# of them reach the 3 s timeout, and the timeout stays the bound on the
# gaps, as before. (3 s, not 1: starting four clients takes seconds on a
# loaded machine; each now lasts >= 5 s: handshake, hello, the gaps.)
# Each client gets both traces, equal to traceroute -T both ways; each
# reverse trace is of its own connection (its flow names that client's
# port); the server reports one trace per client.
# Usage: bash test_coop_clients.sh /path/to/nfqtrace (server and client are
# taken from the same directory)
source "$(dirname "$0")/lib.sh"
net_init coop_clients
NFQ=${1:-}
coop_binaries "$NFQ"
PORT=7100
# client index -> family, queue id
declare -A FAM_OF=([1]=4 [2]=4 [3]=6 [4]=6)
declare -A QUEUE_OF=([1]=11 [2]=12 [3]=13 [4]=14)

section "network: client — r1 — r2 (silent) — r3 (1 s delay) — server, server — b1 (silent) — b2 — client"
net_build 3 2
net_silence "$(net_router 2)"
net_silence "$(net_ret_router 1)"
net_icmp_ratelimit_off
net_delay "$(net_router 3)" 1000   # see the top: silence not inferred before --timeout 3
net_describe 4
CLI=$(net_client) SRV=$(net_server)

section "nfqtrace-server --port $PORT"
require "nfqtrace-server starts, listens and installs its rules" \
  coop_server_start srv "$SRV" --port $PORT --format json

section "four nfqtrace-clients at once from the client namespace (queue ids ${QUEUE_OF[*]})"
for i in 1 2 3 4; do
  fam=${FAM_OF[$i]}
  coop_client_start "cli$i" "$CLI" "$(coop_endpoint "$fam" "$(net_server_addr "$fam")" $PORT)" \
    --format json --queue-id "${QUEUE_OF[$i]}" --timeout 3 --time-limit 30
done
# While they run: the four queues' rules coexist, in one snapshot of the
# rules (one listing, read for each queue: the same moment for all four, and
# one poll is one listing, not four, each of which takes a while on a loaded
# machine). The clients install their rules once connected (a handshake
# across r3's 1 s delay) and each lasts >= 5 s, so the wait allows 10 s:
# what is checked is still that all four are there at the same time.
queues_in_rules() {
  local q n=0 rules
  rules=$(nfqtrace_rules "$CLI")
  for q in "${QUEUE_OF[@]}"; do grep -q -- "--queue-num $q" <<<"$rules" && n=$((n + 1)); done
  (( n == 4 ))
}
check "the rules of all four clients are in place at the same time" wait_until 10 queues_in_rules
# (for the log only: no rule at all must not end the script under set -e)
{ nfqtrace_rules "$CLI" | grep -- '-A NFQTRACE' || true; } | sed -n '1,20s/^/    /p'   # sed reads all: no SIGPIPE under pipefail
for i in 1 2 3 4; do
  rc=0; bg_wait "cli$i" 40 || rc=$?
  eval "RC$i=$rc"
done
check "no nfqtrace rule left in the client namespace after all exited" no_nfqtrace_rules "$CLI"
check "server still running" bg_running srv

section "the server served them at the same time"
# The server logs a client done once it has seen it close, which crosses
# r3's delay: wait for the four (polled: the count is taken at each try),
# then read the order of the log.
four_done() { (( $(grep -c ' done: finished' "${BG_ERR[srv]}") == 4 )); }
check "four clients done: finished" wait_until 5 four_done
show_file "server stderr" "${BG_ERR[srv]}" 20
# Line of the 4th "client ... -> ..." (accept) and of the first "done:".
fourth_accept=$(grep -n ': client .* -> .*[0-9]$' "${BG_ERR[srv]}" | sed -n 4p | cut -d: -f1)
first_done=$(grep -n ' done: ' "${BG_ERR[srv]}" | sed -n 1p | cut -d: -f1)
check "all four accepted before the first was done (accept #4 on line ${fourth_accept:-none}, first done on line ${first_done:-none})" \
  test "${fourth_accept:-999}" -lt "${first_done:-0}"

section "references: traceroute -T both ways, both families"
for fam in 4 6; do
  reference_trace client "$fam" $PORT "$NET_TMP/tr-fwd-$fam"
  # The return path is routing-determined: any destination port will do.
  reference_trace server "$fam" 33000 "$NET_TMP/tr-rev-$fam"
done

ports=()
for i in 1 2 3 4; do
  fam=${FAM_OF[$i]} rcvar="RC$i"
  C_ADDR=$(net_client_addr "$fam") S_ADDR=$(net_server_addr "$fam")
  section "client $i (IPv$fam, --queue-id ${QUEUE_OF[$i]})"
  OUT=${BG_OUT[cli$i]}
  show_coop_output "$OUT"
  show_file "client $i stderr" "${BG_ERR[cli$i]}" 5
  check "client $i exits 0 (exit status ${!rcvar})" test "${!rcvar}" -eq 0
  check "client $i: output is JSON Lines" json_lines_valid "$OUT"
  check "client $i: one trace per direction, every hop's direction and flow match its trace" \
    coop_directions_ok "$OUT"
  fwd_rec=$(coop_records "$OUT" trace forward | sed -n 1p)
  rev_rec=$(coop_records "$OUT" trace reverse | sed -n 1p)
  [[ -n $fwd_rec && -n $rev_rec ]] || { check "client $i: both traces present" false; continue; }
  cport=$(jq -r .flow.sport <<<"$fwd_rec")
  ports+=("$cport")
  check_trace "client $i forward" "$fwd_rec" "$NET_TMP/tr-fwd-$fam" dup
  fwd_hops=$TRACE_HOPS_FILE
  check "client $i forward: flow $C_ADDR:$cport -> $S_ADDR:$PORT (got $(jq -c .flow <<<"$fwd_rec"))" \
    json_true "$fwd_rec" ".flow.src == \"$C_ADDR\" and .flow.dst == \"$S_ADDR\" and .flow.dport == $PORT"
  check_trace "client $i reverse" "$rev_rec" "$NET_TMP/tr-rev-$fam" dup
  rev_hops=$TRACE_HOPS_FILE
  check "client $i reverse: its own connection, $S_ADDR:$PORT -> $C_ADDR:$cport (got $(jq -c .flow <<<"$rev_rec"))" \
    json_true "$rev_rec" ".flow.src == \"$S_ADDR\" and .flow.sport == $PORT and .flow.dst == \"$C_ADDR\" and .flow.dport == $cport"
  check "client $i: the gap at ttl 2 forward (r2 silent)" grep -qx '2 \*' "$fwd_hops"
  check "client $i: the gap at ttl 1 back (b1 silent)" grep -qx '1 \*' "$rev_hops"
done
uniq_ports=$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)
check "four distinct client ports (${ports[*]})" test "$uniq_ports" -eq 4

section "the server's own output"
show_nfq_output "${BG_OUT[srv]}"
srv_ports=$(trace_records "${BG_OUT[srv]}" | jq -r .flow.dport | sort -n | tr '\n' ' ')
cli_ports=$(printf '%s\n' "${ports[@]}" | sort -n | tr '\n' ' ')
check "server traced exactly the four connections (server: $srv_ports; clients: $cli_ports)" \
  test "$srv_ports" = "$cli_ports"

section "SIGINT to the server"
bg_signal srv INT
rc=0; bg_wait srv 5 || rc=$?
check "server exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
check "no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
net_finish
