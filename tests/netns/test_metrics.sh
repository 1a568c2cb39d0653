#!/usr/bin/env bash
# --metrics: a fleet's Prometheus scrapes the tracers. nfqtrace --metrics on
# the client during a traced upload, then nfqtrace-server --metrics while a
# nfqtrace-client is served; a real Prometheus server (Debian's package) in
# the client namespace scrapes both every second, and its HTTP API returns
# nfqtrace_traces_total with the traces the tools printed. The page passes
# `promtool check metrics`; the endpoint answers 404 / 405 to other paths and
# methods, refuses an oversized request, and serves on while a client that
# connected says nothing.
# Usage: bash test_metrics.sh /path/to/nfqtrace (nfqtrace-server and
# nfqtrace-client are taken from the same directory)
source "$(dirname "$0")/lib.sh"
net_init metrics curl prometheus promtool
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
coop_binaries "$NFQ"
PORT=5001 COOP_PORT=7000 M_PORT=9464 S_PORT=9465 P_PORT=9090

section "network: client — r1 — r2 — server (IPv4)"
net_build 2
net_icmp_ratelimit_off
CLI=$(net_client) SRV=$(net_server) S_ADDR=$(net_server_addr 4)

# http NS URL [CURL ARGS...]: the status code, the body in $NET_TMP/body.
http() {
  local ns=$1 url=$2; shift 2
  ns_exec "$ns" curl -s -m 5 -o "$NET_TMP/body" -w '%{http_code}' "$@" "$url" || true
}
# prom_value QUERY: the value of the one series QUERY returns ("" if none).
prom_value() {
  ns_exec "$CLI" curl -s -m 3 -G "http://127.0.0.1:$P_PORT/api/v1/query" --data-urlencode "query=$1" |
    jq -r 'if .status == "success" and (.data.result | length) == 1 then .data.result[0].value[1] else "" end'
}
prom_equals() { [[ $(prom_value "$1") == "$2" ]]; }
page_has() { grep -qxF -- "$2" "$1"; }

section "Prometheus in the client namespace, scraping both tools every second"
cat >"$NET_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: nfqtrace
    static_configs: [{targets: ["127.0.0.1:$M_PORT"]}]
  - job_name: nfqtrace-server
    static_configs: [{targets: ["$S_ADDR:$S_PORT"]}]
EOF
bg_start prometheus ip netns exec "$CLI" prometheus --config.file="$NET_TMP/prometheus.yml" \
  --storage.tsdb.path="$NET_TMP/tsdb" --web.listen-address="127.0.0.1:$P_PORT" --log.level=warn
require "Prometheus listens on 127.0.0.1:$P_PORT in the client namespace" wait_until 20 port_listening "$CLI" $P_PORT

section "nfqtrace --metrics 127.0.0.1:$M_PORT on the client, during a 512 KiB upload"
upload_server "$SRV" 4 $PORT
require "nfqtrace starts and installs its rules" nfqtrace_start nfq "$CLI" "$NFQ" \
  --dport $PORT --format json --metrics 127.0.0.1:$M_PORT --metrics-top 5
check "the metrics port listens" wait_until 5 port_listening "$CLI" $M_PORT
# A client that connects and says nothing, held open through the scrapes.
bg_start silent ip netns exec "$CLI" bash -c "exec 3<>/dev/tcp/127.0.0.1/$M_PORT; sleep 30"
make_data "$NET_TMP/up.bin" 512
upload_start up "$CLI" 4 "$S_ADDR" $PORT "$NET_TMP/up.bin"
check "upload client exits 0" bg_wait up 30
check "upload arrived complete" upload_wait $PORT 1 $((512 * 1024)) 10
one_trace() { (( $(trace_records "${BG_OUT[nfq]}" | wc -l) >= 1 )); }
check "nfqtrace printed a trace" wait_until 15 one_trace
reason=$(trace_records "${BG_OUT[nfq]}" | head -n1 | jq -r .reason)
traces=$(trace_records "${BG_OUT[nfq]}" | wc -l)
log "nfqtrace printed $traces trace(s), the first ended: $reason"

code=$(http "$CLI" "http://127.0.0.1:$M_PORT/metrics")
cp "$NET_TMP/body" "$NET_TMP/page.txt"
show_file "the page (head)" "$NET_TMP/page.txt" 12
check "GET /metrics: 200 (got $code)" test "$code" = 200
check "the page counts the trace: nfqtrace_traces_total{reason=\"$reason\"} $traces" \
  page_has "$NET_TMP/page.txt" "nfqtrace_traces_total{reason=\"$reason\"} $traces"
check "the page has build info" grep -q '^nfqtrace_build_info{version="[^"]\+",revision="[^"]*"} 1$' "$NET_TMP/page.txt"
check "the page counts probes sent" grep -q '^nfqtrace_probes_sent_total [1-9]' "$NET_TMP/page.txt"
check "the page counts replies matched" grep -q '^nfqtrace_replies_matched_total [1-9]' "$NET_TMP/page.txt"
check "the page has the --metrics-top prefix of the server" \
  grep -q "^nfqtrace_prefix_traces_total{prefix=\"${S_ADDR%.*}.0/24\"} $traces\$" "$NET_TMP/page.txt"
check "the page has the flow gauges" grep -q '^nfqtrace_flows_tracked [0-9]' "$NET_TMP/page.txt"
check "no label holds an address but the --metrics-top prefix" \
  bash -c "! grep -v '^nfqtrace_prefix_' '$NET_TMP/page.txt' | grep -qE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+'"
promtool check metrics <"$NET_TMP/page.txt" >"$NET_TMP/promtool.out" 2>&1; rc=$?
show_file "promtool check metrics" "$NET_TMP/promtool.out" 20
check "promtool check metrics accepts the page (exit $rc)" test "$rc" -eq 0 -a ! -s "$NET_TMP/promtool.out"

code=$(http "$CLI" "http://127.0.0.1:$M_PORT/other")
check "GET /other: 404 (got $code)" test "$code" = 404
code=$(http "$CLI" "http://127.0.0.1:$M_PORT/metrics" -X POST -d x=1)
check "POST /metrics: 405 (got $code)" test "$code" = 405
code=$(http "$CLI" "http://127.0.0.1:$M_PORT/metrics" -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)")
check "a 40 KB request header is refused with 4xx (got $code)" test "${code:0:1}" = 4
code=$(printf 'NOT HTTP AT ALL\r\n\r\n' | ns_exec "$CLI" socat -T 3 - TCP4:127.0.0.1:$M_PORT | head -n1)
check "a malformed request gets 400 (got '${code%$'\r'}')" grep -q ' 400 ' <<<"$code"
check "the silent client is still connected" bg_running silent

check "Prometheus' API: nfqtrace_traces_total{reason=\"$reason\"} is $traces" \
  wait_until 15 prom_equals "nfqtrace_traces_total{job=\"nfqtrace\",reason=\"$reason\"}" "$traces"
check "Prometheus' API: the nfqtrace target is up" prom_equals 'up{job="nfqtrace"}' 1
check "Prometheus' API: nfqtrace_build_info is there" prom_equals 'count(nfqtrace_build_info{job="nfqtrace"})' 1
bg_signal nfq INT
check_nfqtrace_exit nfq 10
check "no nfqtrace rule left in the client namespace" no_nfqtrace_rules "$CLI"
bg_stop silent

section "nfqtrace-server --metrics $S_ADDR:$S_PORT, one nfqtrace-client served"
require "nfqtrace-server starts, listens and installs its rules" \
  coop_server_start srv "$SRV" --port $COOP_PORT --format json --metrics "$S_ADDR:$S_PORT"
coop_client_start client "$CLI" "$S_ADDR:$COOP_PORT" --format json
rc=0; bg_wait client 30 || rc=$?
check "nfqtrace-client exits 0 (exit status $rc)" test "$rc" -eq 0
server_traces() { jq -R -c 'fromjson? | select(type == "object" and .type == "trace")' "${BG_OUT[srv]}" | wc -l; }
check "nfqtrace-server printed its trace" wait_until 10 test "$(server_traces)" -ge 1
s_traces=$(server_traces)
s_reason=$(jq -R -r 'fromjson? | select(type == "object" and .type == "trace") | .reason' "${BG_OUT[srv]}" | head -n1)
code=$(http "$SRV" "http://$S_ADDR:$S_PORT/metrics")
cp "$NET_TMP/body" "$NET_TMP/server-page.txt"
check "nfqtrace-server GET /metrics: 200 (got $code)" test "$code" = 200
check "its page: nfqtrace_traces_total{reason=\"$s_reason\"} $s_traces" \
  page_has "$NET_TMP/server-page.txt" "nfqtrace_traces_total{reason=\"$s_reason\"} $s_traces"
check "its page: nfqtrace_server_clients 0 (the client is gone)" page_has "$NET_TMP/server-page.txt" "nfqtrace_server_clients 0"
promtool check metrics <"$NET_TMP/server-page.txt" >"$NET_TMP/promtool-server.out" 2>&1; rc=$?
show_file "promtool check metrics (server)" "$NET_TMP/promtool-server.out" 20
check "promtool check metrics accepts the server's page (exit $rc)" test "$rc" -eq 0 -a ! -s "$NET_TMP/promtool-server.out"
check "Prometheus' API: nfqtrace-server's nfqtrace_traces_total{reason=\"$s_reason\"} is $s_traces" \
  wait_until 15 prom_equals "nfqtrace_traces_total{job=\"nfqtrace-server\",reason=\"$s_reason\"}" "$s_traces"
bg_signal srv INT
rc=0; bg_wait srv 10 || rc=$?
check "nfqtrace-server exits 0 on SIGINT (exit status $rc)" test "$rc" -eq 0
check "no nfqtrace rule left in the server namespace" no_nfqtrace_rules "$SRV"
bg_stop prometheus
net_finish
