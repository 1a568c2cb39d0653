#!/usr/bin/env bash
# The cooperating pair on an asymmetric network: client→server goes
# r1 r2 r3, server→client goes back through b1 b2. One nfqtrace-server; per
# family one nfqtrace-client --format json. The client's forward trace must
# equal traceroute -T from the client, the reverse trace (traced by the
# server, sent inside the connection) traceroute -T from the server to the
# client; the two share no router. Then the same in text mode (the
# side-by-side table). The server stays up between clients, leaves no rule
# after SIGINT, the clients leave none either.
# Usage: bash test_coop_asymmetric.sh /path/to/nfqtrace (server and client
# are taken from the same directory)
source "$(dirname "$0")/lib.sh"
net_init coop_asymmetric
NFQ=${1:-}
coop_binaries "$NFQ"
PORT=7000

section "network: client — r1 — r2 — r3 — server, server — b1 — b2 — client"
net_build 3 2
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server)

section "nfqtrace-server --port $PORT in the server namespace"
require "nfqtrace-server starts, listens and installs its rules" \
  coop_server_start srv "$SRV" --port $PORT --format json

# text_row_addrs FILE TTL: the addresses on the table row of TTL, in order.
text_row_addrs() {
  awk -v ttl="$2" '$1 == ttl {
      for (i = 2; i <= NF; i++) {
        t = $i
        if (t ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ || (t ~ /^[0-9a-fA-F:]+$/ && t ~ /:.*:/)) printf "%s ", t
      }
      exit
    }' "$1"
}
server_saw() { grep -qF -- "$2" "${BG_ERR[$1]}"; }

clients_run=0
for FAM in 4 6; do
  section "IPv$FAM: nfqtrace-client --format json"
  net_describe $FAM
  C_ADDR=$(net_client_addr $FAM) S_ADDR=$(net_server_addr $FAM)
  name="cli-json-$FAM"
  coop_client_start "$name" "$CLI" "$(coop_endpoint $FAM "$S_ADDR" $PORT)" --format json
  rc=0; bg_wait "$name" 30 || rc=$?
  clients_run=$((clients_run + 1))
  show_file "client stderr" "${BG_ERR[$name]}" 10
  check "IPv$FAM: client exits 0 (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM: no nfqtrace rule left in the client namespace after it exited" no_nfqtrace_rules "$CLI"
  check "IPv$FAM: server still running after the client" bg_running srv
  coop_check_traces "$name" $FAM $PORT dup dup "IPv$FAM"
  CPORT=$COOP_CLIENT_PORT
  if [[ $FAM == 4 ]]; then flow_text="$C_ADDR:$CPORT -> $S_ADDR:$PORT"; else flow_text="[$C_ADDR]:$CPORT -> [$S_ADDR]:$PORT"; fi
  check "IPv$FAM: server logged the client ($flow_text)" server_saw srv "client $flow_text"
  check "IPv$FAM: server logged it done: finished" wait_until 5 server_saw srv "client $flow_text done: finished"
done

for FAM in 4 6; do
  section "IPv$FAM: nfqtrace-client in text mode (side-by-side table)"
  S_ADDR=$(net_server_addr $FAM)
  name="cli-text-$FAM"
  coop_client_start "$name" "$CLI" "$(coop_endpoint $FAM "$S_ADDR" $PORT)"
  rc=0; bg_wait "$name" 30 || rc=$?
  clients_run=$((clients_run + 1))
  OUT=${BG_OUT[$name]}
  show_file "client output" "$OUT" 30
  show_file "client stderr" "${BG_ERR[$name]}" 10
  check "IPv$FAM text: client exits 0 (exit status $rc)" test "$rc" -eq 0
  check "IPv$FAM text: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
  check "IPv$FAM text: the table names the forward direction" grep -q forward "$OUT"
  check "IPv$FAM text: the table names the reverse direction" grep -q reverse "$OUT"
  # Row by row: the forward hop of that TTL, then the reverse one.
  net_expected_forward $FAM >"$NET_TMP/want-fwd-$FAM"
  net_expected_return $FAM >"$NET_TMP/want-rev-$FAM"
  max=$(( $(wc -l <"$NET_TMP/want-fwd-$FAM") > $(wc -l <"$NET_TMP/want-rev-$FAM") ?
          $(wc -l <"$NET_TMP/want-fwd-$FAM") : $(wc -l <"$NET_TMP/want-rev-$FAM") ))
  for ((ttl = 1; ttl <= max; ttl++)); do
    want="$(awk -v t=$ttl '$1 == t { print $2 }' "$NET_TMP/want-fwd-$FAM") $(awk -v t=$ttl '$1 == t { print $2 }' "$NET_TMP/want-rev-$FAM")"
    want=$(echo $want)
    got=$(text_row_addrs "$OUT" $ttl); got=$(echo $got)
    check "IPv$FAM text: ttl $ttl row shows '$want' (got '$got')" test "$got" = "$want"
  done
done

section "the server's own output, then SIGINT"
show_nfq_output "${BG_OUT[srv]}"
n=$(trace_records "${BG_OUT[srv]}" | wc -l)
check "server printed one trace per client ($n of $clients_run)" test "$n" -eq "$clients_run"
check "every server trace is of its own outgoing flow (sport $PORT)" \
  test "$(trace_records "${BG_OUT[srv]}" | jq -r "select(.flow.sport != $PORT)" | wc -l)" -eq 0
check "server still running before SIGINT" bg_running srv
bg_signal srv INT
rc=0; bg_wait srv 5 || rc=$?
show_file "server stderr" "${BG_ERR[srv]}" 20
check "server exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
check "no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
check "no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
net_finish
