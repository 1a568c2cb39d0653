#!/usr/bin/env bash
# nfqtrace-client's failures: each one exits with the documented status and
# a one-line reason on stderr, and leaves no rule behind.
#   * nothing listens on the port (IPv4, IPv6): exit 1, "refused/unreachable"
#   * the server's port drops every packet: exit 1 after the connect timeout
#   * a name that does not resolve: exit 1
#   * bad endpoints ("nohostport", "[::1]", ...): exit 2 (usage)
#   * a busy server (--max-clients 1): exit 1, "busy"
#   * the client's --time-limit passes before the server is done: exit 1
#   * SIGINT to the client mid-trace: exit non-zero, the server sees it go
#   * SIGTERM to the server mid-trace: the server exits 0 without rules, the
#     client exits 1 naming the server's error
#   * SIGKILL to the client mid-trace: its rules go all the same (rule
#     keeper), the server sees it go and stays up
#   * SIGKILL to the server mid-trace: the client exits non-zero at once; the
#     server's rules go all the same
# A silent router (r2, on both directions of this symmetric path) and a 3 s
# probe timeout keep a trace running for seconds: "mid-trace". r2 is at TTL
# 2 both ways, so those clients trace with --maxttl 2 (passed on to the server
# for its reverse trace): r2 is then the highest TTL probed, nothing beyond
# it answers, and its silence cannot be inferred after a few round trips (a
# silent hop below an answering one is): the 3 s timeout stays the bound,
# as in test_signals.
# Usage: bash test_coop_errors.sh /path/to/nfqtrace (server and client are
# taken from the same directory)
source "$(dirname "$0")/lib.sh"
net_init coop_errors
NFQ=${1:-}
coop_binaries "$NFQ"
PORT=7200 CLOSED_PORT=7299 DROP_PORT=7298

section "network: client — r1 — r2 (silent) — r3 — server"
net_build 3
net_silence "$(net_router 2)"
net_icmp_ratelimit_off
net_describe 4
CLI=$(net_client) SRV=$(net_server)
S4=$(net_server_addr 4) S6=$(net_server_addr 6)

# client_fails NAME WANT_RC PATTERN ARGS...: runs nfqtrace-client (at most
# 20 s), checks its exit status, that stderr is one line matching PATTERN
# (extended regex, case-insensitive), and that none of its rules is left
# (those of its --queue-id, 0 unless CLIENT_QUEUE says otherwise: another
# client may be running in the namespace).
# CLIENT_MS: how long the client ran, from its start to its exit (what the
# time bounds below are about: not the checks that follow it, each of which
# runs iptables-save and can take a second on a loaded machine).
client_fails() {
  local name=$1 want=$2 pattern=$3 rc=0 queue=${CLIENT_QUEUE:-0} t0; shift 3
  t0=$(date +%s%N)
  coop_client_start "$name" "$CLI" "$@"
  bg_wait "$name" 20 || rc=$?
  CLIENT_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  show_file "stderr" "${BG_ERR[$name]}" 5
  check "$name: exit status $want (got $rc)" test "$rc" -eq "$want"
  check "$name: stderr is one line" one_line_reason "${BG_ERR[$name]}"
  check "$name: the reason matches /$pattern/" grep -qiE -- "$pattern" "${BG_ERR[$name]}"
  if [[ -n ${CLIENT_QUEUE:-} ]]; then
    check "$name: no rule of its queue $queue left in the client namespace" no_queue_rules "$CLI" "$queue"
  else
    check "$name: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
  fi
}

has_forward_hop() { grep -q '"direction":"forward"' "$1"; }

section "no server: nothing listens on port $CLOSED_PORT"
client_fails closed-v4 1 'unreachable|refused' "$S4:$CLOSED_PORT" --format json
client_fails closed-v6 1 'unreachable|refused' "[$S6]:$CLOSED_PORT" --format json

section "a port that drops everything (no answer to the SYN)"
ns_exec "$SRV" iptables -A INPUT -p tcp --dport $DROP_PORT -j DROP
client_fails dropped 1 'unreachable|no answer|timed? ?out' "$S4:$DROP_PORT"
check "dropped: gave up within 12 s (took $CLIENT_MS ms)" test "$CLIENT_MS" -le 12000

section "a name that does not resolve"
client_fails unresolvable 1 'resolve|unreachable' "no-such-host.invalid:$PORT"

section "bad endpoints and options: usage errors"
for ep in nohostport '[::1]' '::1:7200' "$S4:" "$S4:0" "$S4:65536" "$S4:http" '[::1]7200' ':7200'; do
  rc=0
  ns_exec "$CLI" "$COOP_CLIENT" "$ep" >"$NET_TMP/ep.out" 2>"$NET_TMP/ep.err" || rc=$?
  check "endpoint '$ep': exit 2 (got $rc; $(head -c 120 "$NET_TMP/ep.err" | head -n1))" test "$rc" -eq 2
done
rc=0; ns_exec "$CLI" "$COOP_CLIENT" >/dev/null 2>&1 || rc=$?
check "no endpoint at all: exit 2 (got $rc)" test "$rc" -eq 2
rc=0; ns_exec "$CLI" "$COOP_CLIENT" "$S4:$PORT" --no-such-option >/dev/null 2>&1 || rc=$?
check "unknown option: exit 2 (got $rc)" test "$rc" -eq 2
check "no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"

section "nfqtrace-server --port $PORT --max-clients 1"
require "nfqtrace-server starts, listens and installs its rules" \
  coop_server_start srv "$SRV" --port $PORT --max-clients 1 --format json

section "busy: a second client while the first one's trace runs"
coop_client_start long1 "$CLI" "$S4:$PORT" --format json --timeout 3 --maxttl 2 --time-limit 30
check "long1: a first forward hop within 5 s" wait_until 5 has_forward_hop "${BG_OUT[long1]}"
CLIENT_QUEUE=5 client_fails busy 1 '^nfqtrace-client: server refused: server busy' "$S4:$PORT" --format json --queue-id 5
check "long1 still running" bg_running long1
rc=0; bg_wait long1 30 || rc=$?
show_coop_output "${BG_OUT[long1]}"
check "long1: exits 0 once both traces ended (exit status $rc)" test "$rc" -eq 0
check "long1: both traces" test "$(jq -R -c 'fromjson? | select(.type == "trace")' "${BG_OUT[long1]}" | wc -l)" -eq 2

section "client --time-limit 2 with a 3 s probe timeout: timeout"
client_fails timelimit 1 'time' "$S4:$PORT" --format json --timeout 3 --maxttl 2 --time-limit 2
check "timelimit: gave up within 5 s (took $CLIENT_MS ms)" test "$CLIENT_MS" -le 5000

section "SIGINT to the client mid-trace"
server_log_has() { grep -qF -- "$1" "${BG_ERR[srv]}"; }
coop_client_start sigint "$CLI" "[$S6]:$PORT" --format json --timeout 3 --maxttl 2
check "sigint: a first forward hop within 5 s" wait_until 5 has_forward_hop "${BG_OUT[sigint]}"
bg_signal sigint INT
rc=0; bg_wait sigint 5 || rc=$?
show_file "stderr" "${BG_ERR[sigint]}" 5
check "sigint: exits non-zero within 5 s (exit status $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "sigint: stderr is one line" one_line_reason "${BG_ERR[sigint]}"
check "sigint: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
check "the server saw that client go before its trace was done" \
  wait_until 5 server_log_has "done: client closed the connection before the trace was done"
check "server still running" bg_running srv

section "SIGTERM to the server mid-trace"
coop_client_start sigterm "$CLI" "$S4:$PORT" --format json --timeout 3 --maxttl 2
check "sigterm: a first forward hop within 5 s" wait_until 5 has_forward_hop "${BG_OUT[sigterm]}"
bg_signal srv TERM
rc=0; bg_wait srv 5 || rc=$?
check "server exits 0 on SIGTERM (exit status $rc)" test "$rc" -eq 0
check "no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
rc=0; bg_wait sigterm 10 || rc=$?
show_file "stderr" "${BG_ERR[sigterm]}" 5
check "sigterm: client exits 1 (exit status $rc)" test "$rc" -eq 1
check "sigterm: stderr is one line" one_line_reason "${BG_ERR[sigterm]}"
# The server says why before it closes (Server::shutdown writes an error
# line to every client): that reason must reach the client.
check "sigterm: the reason is the server's own: 'server error: server shutting down'" \
  grep -qF 'server error: server shutting down' "${BG_ERR[sigterm]}"
check "sigterm: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"

section "SIGKILL to the client mid-trace"
require "nfqtrace-server starts again" coop_server_start srv2 "$SRV" --port $PORT --format json
server2_log_has() { grep -qF -- "$1" "${BG_ERR[srv2]}"; }
coop_client_start kill9 "$CLI" "$S4:$PORT" --format json --timeout 3 --maxttl 2 --time-limit 30
check "kill9: a first forward hop within 5 s" wait_until 5 has_forward_hop "${BG_OUT[kill9]}"
log "SIGKILL to nfqtrace-client (pid ${BG_PID[kill9]})"
kill -KILL "${BG_PID[kill9]}"
{ wait "${BG_PID[kill9]}" || true; } 2>/dev/null
# Nothing of the client can clean up but what it left to do so (its rule keeper).
check "kill9: the client's rules are gone within 5 s" wait_until 5 no_nfqtrace_rules "$CLI"
no_nfqtrace_rules "$CLI" || true
check "kill9: the server saw the client go before its trace was done" \
  wait_until 5 server2_log_has "done: client closed the connection before the trace was done"
check "kill9: the server is still running" bg_running srv2

section "SIGKILL to the server mid-trace"
coop_client_start sigkill "$CLI" "$S4:$PORT" --format json --timeout 3 --maxttl 2 --time-limit 30
check "sigkill: a first forward hop within 5 s" wait_until 5 has_forward_hop "${BG_OUT[sigkill]}"
check "sigkill: the client is still tracing" bg_running sigkill
log "SIGKILL to nfqtrace-server (pid ${BG_PID[srv2]})"
kill -KILL "${BG_PID[srv2]}"
{ wait "${BG_PID[srv2]}" || true; } 2>/dev/null   # (no "Killed" from bash)
start=$(date +%s%N)
rc=0; { bg_wait sigkill 15 || rc=$?; } 2>/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
show_coop_output "${BG_OUT[sigkill]}"
show_file "stderr" "${BG_ERR[sigkill]}" 5
check "sigkill: client exits non-zero (exit status $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "sigkill: client noticed within 5 s (took $ms ms)" test "$ms" -le 5000
check "sigkill: stderr is one line" one_line_reason "${BG_ERR[sigkill]}"
check "sigkill: the reason says the server closed or failed" grep -qiE 'server|closed|reset' "${BG_ERR[sigkill]}"
check "sigkill: no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
check "sigkill: the killed server's rules are gone within 5 s (its rule keeper)" \
  wait_until 5 no_nfqtrace_rules "$SRV"
no_nfqtrace_rules "$SRV" || true
net_finish
