#!/usr/bin/env bash
# Overload: with a queue of two packets and a fast transfer, the queue is
# full most of the time. Packets then pass untraced (fail-open): the
# transfer is intact and not slowed to a stall, and nfqtrace says how many
# passed untraced.
# Usage: bash test_overload.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init overload
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001

section "network: client — r1 — server"
net_build 1
CLI=$(net_client)

section "a 64 MiB upload as fast as it goes, through a queue of 2 packets"
# --repeat keeps the flow coming through the queue (a finished trace would
# otherwise send it past the queue for good).
nfqtrace_start nfq "$CLI" "$NFQ" --dport $PORT --queue-size 2 --repeat 0.05 --format json
make_data "$NET_TMP/data" 65536
upload_server "$(net_server)" $FAM $PORT
start=$(date +%s%N)
upload_start up "$CLI" $FAM "$(net_server_addr $FAM)" $PORT "$NET_TMP/data" 1048576 0
check "the upload completes within 30 s" upload_wait $PORT 1 "$(stat -c %s "$NET_TMP/data")" 30
echo "    took $(( ($(date +%s%N) - start) / 1000000 )) ms"
check "the upload arrives intact (sha256)" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/data")"
bg_signal nfq INT
rc=0; nfqtrace_wait nfq 10 || rc=$?
check "SIGINT: exit 0 ($rc)" test "$rc" -eq 0
show_file "nfqtrace stderr" "${BG_ERR[nfq]}" 10
untraced=$(sed -n 's/^nfqtrace: \([0-9]*\) packets of the traced connections passed untraced.*/\1/p' "${BG_ERR[nfq]}")
check "it reports the packets that passed untraced (${untraced:-none})" test "${untraced:-0}" -gt 0
check "no rule left" no_nfqtrace_rules "$CLI"
net_finish
