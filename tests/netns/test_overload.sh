#!/usr/bin/env bash
# Overload: with a queue of two packets and a fast transfer, the queue is
# full most of the time (in mangle mode: in dup mode the connection's
# packets are copied to the log, only the routers' answers are queued).
# Packets then pass untraced (fail-open): the transfer is intact and not
# slowed to a stall, and nfqtrace says how many passed untraced: while it
# runs (the rule keeper's "queue full" line, here every second instead of
# every 5 s) and in all at exit.
# Usage: bash test_overload.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init overload
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001
LIVE_RE='^nfqtrace: queue full: \([0-9]*\) packets passed untraced in the last \([0-9.]*\) s (\([0-9]*\) in all)$'

section "network: client — r1 — server"
net_build 1
CLI=$(net_client)
# Mangle mode queues single segments (GSO off): 64 KB links make them as
# large as the GSO packets a fast flow sends, each as costly to copy.
for ns_if in "$CLI fwd" "$(net_router 1) clside" "$(net_router 1) srvside" "$(net_server) fwd"; do
  read -r ns ifname <<<"$ns_if"
  ns_exec "$ns" ip link set dev "$ifname" mtu 65000
done

section "a 64 MiB upload in bursts of 2 MiB, each as fast as it goes, through a queue of 2 packets"
# --repeat keeps the flow coming through the queue (a finished trace would
# otherwise send it past the queue for good); --packetfreq 1000: a round
# mangles few of its segments (each one lost costs the upload speed) while
# all of them pass the queue. The bursts make the upload last several
# report intervals.
export NFQTRACE_OVERLOAD_REPORT_SECONDS=1
nfqtrace_start nfq "$CLI" "$NFQ" --dport $PORT --mode mangle --packetfreq 1000 --queue-size 2 --repeat 0.05 --format json
make_data "$NET_TMP/data" 65536
upload_server "$(net_server)" $FAM $PORT
start=$(date +%s%N)
upload_start up "$CLI" $FAM "$(net_server_addr $FAM)" $PORT "$NET_TMP/data" 2097152 0.15
# A live report is seen while the upload still runs (checked after it is
# seen, so it was written before the upload ended).
live_seen=no
while bg_running up; do
  if grep -q '^nfqtrace: queue full: ' "${BG_ERR[nfq]}" && bg_running up; then
    live_seen=yes
    break
  fi
  sleep 0.1
done
check "a live \"queue full\" line appears during the upload" test "$live_seen" = yes
check "the upload completes within 30 s" upload_wait $PORT 1 "$(stat -c %s "$NET_TMP/data")" 30
echo "    took $(( ($(date +%s%N) - start) / 1000000 )) ms"
check "the upload arrives intact (sha256)" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/data")"
bg_signal nfq INT
rc=0; nfqtrace_wait nfq 10 || rc=$?
check "SIGINT: exit 0 ($rc)" test "$rc" -eq 0
show_file "nfqtrace stderr" "${BG_ERR[nfq]}" 20
untraced=$(sed -n 's/^nfqtrace: \([0-9]*\) packets of the traced connections passed untraced.*/\1/p' "${BG_ERR[nfq]}")
check "it reports the packets that passed untraced (${untraced:-none})" test "${untraced:-0}" -gt 0

# The live lines: each well formed, with a positive count over about one
# interval (1 s); their counts add up to the running total they print, which the
# total at exit does not undercut.
live_lines=$(grep -c '^nfqtrace: queue full: ' "${BG_ERR[nfq]}")
well_formed=$(sed -n "s/$LIVE_RE/\1 \2 \3/p" "${BG_ERR[nfq]}")
check "every live line is well formed ($live_lines)" test "$(printf '%s\n' "$well_formed" | grep -c .)" -eq "$live_lines"
sums_ok() {
  local sum=0 last=0 delta seconds total
  while read -r delta seconds total; do
    (( delta > 0 )) || return 1
    # About the interval; more when the keeper waited for a slow command.
    awk -v s="$seconds" 'BEGIN { exit !(s > 0 && s < 5) }' || return 1
    sum=$((sum + delta))
    (( total == sum )) || return 1
    last=$total
  done <<<"$well_formed"
  (( last > 0 && last <= ${untraced:-0} ))
}
check "the live counts add up to their total, at most the total at exit" sums_ok
check "no rule left" no_nfqtrace_rules "$CLI"
net_finish
