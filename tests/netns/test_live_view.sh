#!/usr/bin/env bash
# The live view in a real terminal (issue 11): nfqtrace runs in tmux with
# its stdout a terminal and no --format, so it shows the full-screen hop
# table; a slow upload is traced with --repeat 1 across 3 routers:
#   - the table names every router and the server (marked destination) at
#     its TTL, as traceroute -T sees them;
#   - it updates as rounds go on: the probes sent at TTL 1 grow;
#   - n switches names off, p pauses (and again resumes), keys that do
#     not stop it;
#   - q quits as SIGINT does: exit 0, no rule left; the upload intact.
# Usage: bash test_live_view.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init live_view
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "the live view"
command -v tmux >/dev/null || { echo "SKIP: tmux not installed (scripts/setup installs it)"; exit 77; }
FAM=4 PORT=5601 KIB=1536

section "network: client — r1 — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe $FAM
CLI=$(net_client) SRV=$(net_server) S_ADDR=$(net_server_addr $FAM)
SOCK="nfqt-live-$$"   # a tmux server of our own, on its own socket
RC="$NET_TMP/nfq.rc"

tmux_cmd() { tmux -L "$SOCK" "$@"; }
screen() { tmux_cmd capture-pane -p -t live; }
# ttl_row TTL: the table's row for that TTL ("  2  198.18.2.2 ...").
# (sed and grep without -q read to the end: no SIGPIPE under pipefail)
ttl_row() { screen | grep -E "^ *$1  " | sed -n 1p || true; }
row_has() { ttl_row "$1" | grep -F -- "$2" >/dev/null; }
# sent_at TTL: the Snt column of that row (0 when not shown yet).
sent_at() { ttl_row "$1" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; break } }'; }
sent_grows() { local now; now=$(sent_at 1); [[ -n $now && $now -gt $1 ]]; }
screen_has() { screen | grep -F -- "$1" >/dev/null; }

make_data "$NET_TMP/data.bin" $KIB
upload_server "$SRV" $FAM $PORT
section "nfqtrace --dport $PORT --repeat 1 in a tmux terminal (no --format: the live view)"
tmux_cmd -f /dev/null new-session -d -s live -x 200 -y 40 \
  "TERM=xterm ip netns exec $CLI $NFQ --dport $PORT --repeat 1 2>$NET_TMP/nfq.err; echo \$? >$RC"
# tmux's server is ours to stop: net_cleanup stops it by its PID.
BG_PID[tmux]=$(tmux_cmd display-message -p '#{pid}')
check "nfqtrace installs its rules" wait_until 5 nfqtrace_rules_present "$CLI"
upload_start up "$CLI" $FAM "$S_ADDR" $PORT "$NET_TMP/data.bin"

check "the view shows the hop table with the server as destination" \
  wait_until 10 row_has 4 destination
echo "--- the screen"; screen | sed -n 1,12p | sed 's/^/    /'
for ttl in 1 2 3; do
  check "ttl $ttl: r$ttl's address" row_has $ttl "$(link_addr $FAM 1 $ttl 2)"
done
check "ttl 4: the server's address" row_has 4 "$S_ADDR"
first=$(sent_at 1)
check "the table updates as rounds go on (probes sent at ttl 1: ${first:-none} and growing)" \
  wait_until 5 sent_grows "${first:-0}"
tmux_cmd send-keys -t live n
check "n: the header says names can be switched back on" wait_until 2 screen_has "n names on"
tmux_cmd send-keys -t live p
check "p: paused" wait_until 2 screen_has "p resume"
tmux_cmd send-keys -t live p
check "p again: running" wait_until 2 screen_has "p pause"

check "upload client exits 0" bg_wait up 30
check "upload arrived complete" upload_wait $PORT 1 $((KIB * 1024)) 10
check "upload sha256 matches end to end" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/data.bin")"

section "q quits as SIGINT does"
tmux_cmd send-keys -t live q
check "nfqtrace ended within 5 s" wait_until 5 test -s "$RC"
check "exit status 0 (got $(cat "$RC" 2>/dev/null))" test "$(cat "$RC" 2>/dev/null)" = 0
check "no nfqtrace rule left in cli" no_nfqtrace_rules "$CLI"
show_file "nfqtrace stderr" "$NET_TMP/nfq.err" 10
check "its summary came after the view gave the terminal back" grep -q "traces" "$NET_TMP/nfq.err"
tmux_cmd kill-server 2>/dev/null || true
net_finish
