#!/usr/bin/env bash
# The result formats of a real traced connection, read by the tools that
# read them (issue 11, section 3). One nfqtrace run, --format text on
# stdout and every other format at once through --output, during an upload
# across 3 routers (r2 silent), IPv4 then IPv6:
#   - stdout is the text table; the JSON file starts with the run's meta
#     line (tool, version, host, a UUID run id, the options given) and holds
#     one trace equal to traceroute -T;
#   - scamper's own readers read the warts file: sc_warts2json gives one
#     trace whose replies (TTL, address) are the JSON trace's, and
#     sc_warts2text prints every router and the server;
#   - the Atlas file is one RIPE Atlas traceroute result whose replies are
#     the JSON trace's, "*" for the silent TTL;
#   - Graphviz's dot renders the dot file, which names every address.
# Usage: bash test_formats.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init formats
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
needs_real_nfqtrace "$NFQ" "--output and the result formats"
for tool in sc_warts2json sc_warts2text dot; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/setup installs scamper and graphviz)"; exit 77; }
done

section "network: client — r1 — r2 (silent) — r3 — server"
net_build 3
net_silence "$(net_router 2)"
net_icmp_ratelimit_off

# The replies of a JSON trace record / of sc_warts2json's trace / of an Atlas
# result, each as sorted "ttl addr" lines.
json_replies() { trace_records "$1" | jq -r '.hops[] | .ttl as $t | .replies[] | "\($t) \(.addr)"' | sort -u; }
warts_replies() { jq -r 'select(.type == "trace") | .hops[] | "\(.probe_ttl) \(.addr)"' "$1" | sort -u; }
atlas_replies() { jq -r '.result[] | .hop as $h | .result[] | select(.from) | "\($h) \(.from)"' "$1" | sort -u; }
same_lines() {
  cmp -s <(echo "$2") <(echo "$3") && return 0
  echo "  $1 differ (left: nfqtrace's JSON, right: the other):"; diff <(echo "$2") <(echo "$3") | sed 's/^/    /'
  return 1
}

for FAM in 4 6; do
  PORT=$((5700 + FAM)) OUT="$NET_TMP/run$FAM"
  section "IPv$FAM: nfqtrace --format text --output json,warts,atlas,dot during an upload"
  net_describe $FAM
  traced_transfer upload "nfq$FAM" $FAM $PORT 1024 "$(net_client)" "$NFQ" \
    --dport $PORT --count 1 --format text --output "json=$OUT.jsonl" --output "warts=$OUT.warts" \
    --output "atlas=$OUT.atlas" --output "dot=$OUT.dot"
  show_file "stdout (text)" "${BG_OUT[nfq$FAM]}" 12
  reference_trace client $FAM $PORT "$NET_TMP/tr$FAM"

  section "IPv$FAM: text and JSON"
  check "IPv$FAM: stdout is the text table (a line per TTL)" grep -qE "^ *4 +$(net_server_addr $FAM)" "${BG_OUT[nfq$FAM]}"
  META=$(sed -n 1p "$OUT.jsonl")
  echo "  meta: $META"
  check "IPv$FAM: the JSON file starts with the meta line" json_true "$META" \
    '.type == "meta" and .tool == "nfqtrace" and (.version | length > 0) and (.host | length > 0)
     and (.run_id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
     and .options["--dport"] == "'$PORT'" and .options["--count"] == "1" and (.start | endswith("Z"))'
  check "IPv$FAM: one trace in the JSON file" test "$(trace_records "$OUT.jsonl" | wc -l)" -eq 1
  check_trace "IPv$FAM JSON trace" "$(trace_records "$OUT.jsonl" | sed -n 1p)" "$NET_TMP/tr$FAM" dup
  WANT=$(json_replies "$OUT.jsonl")

  section "IPv$FAM: warts, read by scamper's sc_warts2json and sc_warts2text"
  sc_warts2json "$OUT.warts" >"$OUT.warts.json" 2>"$OUT.warts.err"; rc=$?
  check "IPv$FAM: sc_warts2json reads the file (exit $rc, stderr: $(head -c 200 "$OUT.warts.err"))" test $rc -eq 0 -a ! -s "$OUT.warts.err"
  check "IPv$FAM: one trace in it" test "$(jq -r 'select(.type == "trace") | .type' "$OUT.warts.json" | wc -l)" -eq 1
  check "IPv$FAM: its replies are nfqtrace's" same_lines "replies (ttl addr)" "$WANT" "$(warts_replies "$OUT.warts.json")"
  check "IPv$FAM: its addresses and method (got $(jq -c 'select(.type == "trace") | [.src, .dst, .method, .stop_reason]' "$OUT.warts.json"))" \
    test -n "$(jq -r --arg s "$(net_client_addr $FAM)" --arg d "$(net_server_addr $FAM)" \
      'select(.type == "trace" and .src == $s and .dst == $d and .method == "tcp-ack") | .dst' "$OUT.warts.json")"
  sc_warts2text "$OUT.warts" >"$OUT.warts.txt" 2>&1
  show_file "sc_warts2text" "$OUT.warts.txt" 10
  for ttl in 1 3; do
    check "IPv$FAM: sc_warts2text shows r$ttl" grep -qF "$(link_addr $FAM 1 $ttl 2)" "$OUT.warts.txt"
  done
  check "IPv$FAM: sc_warts2text shows the server" grep -qF "$(net_server_addr $FAM)" "$OUT.warts.txt"

  section "IPv$FAM: RIPE Atlas"
  show_file "atlas" "$OUT.atlas" 3
  check "IPv$FAM: one Atlas result" test "$(jq -c . "$OUT.atlas" | wc -l)" -eq 1
  check "IPv$FAM: an Atlas traceroute result" json_true "$(cat "$OUT.atlas")" \
    '.type == "traceroute" and .proto == "TCP" and .af == '$FAM' and .src_addr == "'"$(net_client_addr $FAM)"'"
     and .dst_addr == "'"$(net_server_addr $FAM)"'" and (.timestamp | type) == "number" and .endtime >= .timestamp
     and (.result | type) == "array"'
  check "IPv$FAM: its replies are nfqtrace's" same_lines "replies (hop from)" "$WANT" "$(atlas_replies "$OUT.atlas")"
  check "IPv$FAM: the silent TTL 2 is all \"*\"" json_true "$(cat "$OUT.atlas")" \
    '[.result[] | select(.hop == 2) | .result[] | has("x")] | (length > 0 and all)'

  section "IPv$FAM: Graphviz"
  dot -Tsvg "$OUT.dot" >"$OUT.svg" 2>"$OUT.dot.err"; rc=$?
  check "IPv$FAM: dot renders it (exit $rc)" test $rc -eq 0 -a -s "$OUT.svg"
  for addr in $(awk '{ print $2 }' <<<"$WANT" | sort -u); do
    check "IPv$FAM: the graph names $addr" grep -qF "$addr" "$OUT.dot"
  done
done
net_finish
