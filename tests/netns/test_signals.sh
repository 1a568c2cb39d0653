#!/usr/bin/env bash
# SIGINT, then SIGTERM, while a trace is running (a silent router at the
# highest TTL probed, --maxttl 3, with a 3 s timeout keeps it running:
# nothing beyond it answers, so its silence cannot be inferred sooner):
# nfqtrace exits 0 within 5 s, removes its rules, and the traced connection
# goes on undisturbed to the end.
# Usage: bash test_signals.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init signals
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4

section "network: client — r1 — r2 — r3 (silent) — r4 — server"
net_build 4
net_silence "$(net_router 3)"
net_icmp_ratelimit_off
net_describe $FAM
CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr $FAM)

has_hop_line() { grep -q '"type" *: *"hop"' "$1"; }

for sig in INT TERM; do
  port=$([[ $sig == INT ]] && echo 5001 || echo 5002)
  name="nfq-$sig"
  section "SIG$sig during a trace (--dport $port, no --count)"
  make_data "$NET_TMP/data-$sig.bin" 2048
  upload_server "$SRV" $FAM "$port"
  require "nfqtrace starts and installs its rules" nfqtrace_start "$name" "$CLI" "$NFQ" \
    --dport "$port" --mode dup --format json --timeout 3 --maxttl 3
  upload_start "up-$sig" "$CLI" $FAM "$DST" "$port" "$NET_TMP/data-$sig.bin"
  check "a first hop is reported within 10 s" wait_until 10 has_hop_line "${BG_OUT[$name]}"
  traces_before=$(trace_records "${BG_OUT[$name]}" | wc -l)
  check "the trace is still running when the signal is sent (no trace record yet)" test "$traces_before" -eq 0
  check "nfqtrace still running" bg_running "$name"
  log "sending SIG$sig to nfqtrace (pid ${BG_PID[$name]})"
  bg_signal "$name" "$sig"
  check_nfqtrace_exit "$name" 5
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  show_nfq_output "${BG_OUT[$name]}"
  # What an interrupted trace prints is not fixed by the contract; show it.
  echo "  note: trace records after SIG$sig: $(trace_records "${BG_OUT[$name]}" | jq -c '[.reason, (.hops | length)]' | tr '\n' ' ')"
  check "the connection goes on: upload client exits 0" bg_wait "up-$sig" 30
  check "upload arrived complete" upload_wait "$port" 1 $((2048 * 1024)) 10
  check "upload sha256 matches end to end" test "$(upload_received_shas "$port")" = "$(sha_of "$NET_TMP/data-$sig.bin")"
done
net_finish
