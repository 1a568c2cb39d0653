#!/usr/bin/env bash
# The conntrack mark that sends a finished flow past the queue must never
# outlive its use, or a connection is never traced again:
#   - a run killed with SIGKILL leaves its marks; the next run clears them
#     and traces the same (still open) connection;
#   - a run that exits clears the marks it set;
#   - a flow's close clears its mark at once (conntrack keeps a closed
#     connection for minutes), and a new connection on the same ports is
#     traced afresh.
# Marks are read from /proc/net/nf_conntrack in the client's namespace.
# Usage: bash test_skip_marks.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init skip_marks
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4
MARK=$((0x4e510000))

section "network: client — r1 — r2 — server"
net_build 2
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) DST=$(net_server_addr $FAM)

# marked_connections PORT: conntrack entries to PORT that carry our bit.
marked_connections() {
  ns_exec "$CLI" cat /proc/net/nf_conntrack |
    awk -v port="dport=$1" -v bit="$MARK" '
      $0 ~ port" " { for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) {
        m = substr($i, 6) + 0; if (int(m / bit) % 2 == 1) n++ } }
      END { print n + 0 }'
}
has_marked() { (( $(marked_connections "$1") >= $2 )); }
has_no_marked() { (( $(marked_connections "$1") == 0 )); }
traces_of() { trace_records "$1" | jq -r '.flow.sport' | grep -c -x "$2" || true; }
has_traces() { (( $(traces_of "$1" "$2") >= $3 )); }

section "a run killed with SIGKILL leaves its marks; the next run clears them"
PORT=5001
make_data "$NET_TMP/long" 4096   # about 10 s at 16 KiB every 40 ms
upload_server "$SRV" $FAM $PORT
require "run A starts" nfqtrace_start runA "$CLI" "$NFQ" --dport $PORT --format json
upload_start long "$CLI" $FAM "$DST" $PORT "$NET_TMP/long"
check "run A traces the upload" wait_until 10 has_traces "${BG_OUT[runA]}" '[0-9]*' 1
SPORT=$(trace_records "${BG_OUT[runA]}" | jq -r '.flow.sport' | head -1)
check "its finished flow gets the skip mark" wait_until 5 has_marked $PORT 1
bg_signal runA KILL
bg_wait runA 5 || true
check "the keeper removes run A's rules within 2 s" wait_until 2 no_nfqtrace_rules "$CLI"
echo "  marked connections after SIGKILL: $(marked_connections $PORT)"
# Run B may trace the connection and exit before its rules could be seen.
bg_start runB ip netns exec "$CLI" "$NFQ" --dport $PORT --count 1 --format json
check_nfqtrace_exit runB 10
check "run B traced the same, still open connection (sport $SPORT)" \
  has_traces "${BG_OUT[runB]}" "$SPORT" 1
check "run B cleared the mark it set when it exited" has_no_marked $PORT
check "no nfqtrace rule left" no_nfqtrace_rules "$CLI"
check "the upload completes" upload_wait $PORT 1 $((4096 * 1024)) 30
check "the upload arrives intact (sha256)" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/long")"

section "a flow's close clears its mark; a new connection on its ports is traced afresh"
PORT=5002 SPORT=47001
# The client closes first and keeps TIME_WAIT: let it reuse the ports.
ns_exec "$CLI" sysctl -qw net.ipv4.tcp_tw_reuse=1
make_data "$NET_TMP/short" 512
upload_server "$SRV" $FAM $PORT
require "run C starts" nfqtrace_start runC "$CLI" "$NFQ" --dport $PORT --format json
same_ports_upload() {
  bg_start "$1" ip netns exec "$CLI" bash -c \
    "bash '$NET_TMP/slowcat.sh' '$NET_TMP/short' 16384 0.04 |
     socat -u - 'TCP4:$DST:$PORT,sourceport=$SPORT,reuseaddr'"
}
same_ports_upload first
check "the first connection is traced" wait_until 10 has_traces "${BG_OUT[runC]}" $SPORT 1
check "its finished flow gets the skip mark" wait_until 5 has_marked $PORT 1
check "the first upload ends" bg_wait first 20
check "its close cleared the mark (conntrack still holds the closed connection)" \
  wait_until 3 has_no_marked $PORT
sleep 1.1   # TIME_WAIT reuse wants a newer timestamp second
same_ports_upload second
check "the second connection on the same ports is traced too" \
  wait_until 10 has_traces "${BG_OUT[runC]}" $SPORT 2
check "the second upload ends" bg_wait second 20
bg_signal runC INT
check_nfqtrace_exit runC 10
show_nfq_output "${BG_OUT[runC]}"
# Both came from the same port: the second upload's file replaced the first's.
check "the second upload arrived intact (sha256)" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/short")"
check "no nfqtrace rule left" no_nfqtrace_rules "$CLI"
net_finish
