#!/usr/bin/env bash
# Harmlessness of dup mode, segment by segment: every TCP segment that
# reaches the receiver — originals and nfqtrace's duplicate probes alike —
# must carry exactly the stream's bytes at its sequence number. (The sha256
# check only catches a bad probe when it happens to arrive before the
# original.) Checked with a capture at the receiver and
# tools/testnet/streamcheck.cpp, for an upload traced from the client and a
# download traced from the server.
# Usage: bash test_probe_payload.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init probe_payload tcpdump
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4
net_helpers "$NFQ"
STREAMCHECK=$(net_helper streamcheck) || exit 1

section "network: client — r1 — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe $FAM

section "upload, traced from the client (--dport 5001), captured at the server"
capture_start cap-up "$(net_server)" fwd tcp dst port 5001
traced_transfer upload up $FAM 5001 1536 "$(net_client)" "$NFQ" --dport 5001 --mode dup --count 1 --format json
capture_stop cap-up
show_nfq_output "${BG_OUT[up]}"
check "every segment the server received carries the stream's bytes" \
  "$STREAMCHECK" "$NET_TMP/cap-up.pcap" "$NET_TMP/up-data.bin" dst:5001

section "download, traced from the server (--sport 5002), captured at the client"
capture_start cap-down "$(net_client)" fwd tcp src port 5002
traced_transfer download down $FAM 5002 1536 "$(net_server)" "$NFQ" --sport 5002 --mode dup --count 1 --format json
capture_stop cap-down
show_nfq_output "${BG_OUT[down]}"
check "every segment the client received carries the stream's bytes" \
  "$STREAMCHECK" "$NET_TMP/cap-down.pcap" "$NET_TMP/down-data.bin" src:5002
net_finish
