#!/usr/bin/env bash
# A firewall that randomises TCP sequence numbers (issue 10, item 1). r1 runs
# seqshift (tools/testnet/seqshift.cpp) on the traced connection's forwarded
# packets: it adds OFFSET to the client's sequence numbers and takes it off
# the server's ACK and SACK numbers, so the two ends never notice, while
# r2, r3 and the server see, and r2 and r3 quote in their ICMP errors, the
# shifted sequence numbers. ICMP passes r1 untouched, as through such boxes.
#
# Before nfqtrace learnt the shift, those quotes named no probe: TTL 2 and 3
# came out silent (traceroute -T, matching by ports, still sees r2 and r3),
# and only the server's D-SACK (whose SACK blocks r1 shifts back) was
# recognised. Now nfqtrace holds a quote naming no probe under the shift
# that would make it name one (same IP length, IPv4 ID, quoted payload) and
# believes the shift once replies for two different probes agree.
#
# Checks, IPv4 then IPv6 (Linux routers quote the payload over IPv6: as much
# as fits in 1280 bytes): nfqtrace exits 0 by itself, no rule is left, the
# upload arrives intact (sha256: the shift is undone both ways); the trace
# equals traceroute -T hop by hop (r2 and r3 included), is reached; it has
# exactly one "rewrites" entry {"field":"tcp.seq","offset":OFFSET,
# "first_seen_ttl":2}; every router reply at TTL >= 2 lists "tcp.seq" in its
# "changes", TTL 1's (r1 answers before its own FORWARD hook shifts) do
# not; the live hop lines say the same. Harness: seqshift shifted packets both
# ways (the server's D-SACK blocks among them) and read every packet it was
# given.
# Usage: bash test_seq_rewrite.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init seq_rewrite
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
net_helpers "$NFQ"
SEQSHIFT=$(net_helper seqshift) || exit 1

# A shift with the top bit set, so that it wraps the 32-bit space for about
# half of the initial sequence numbers.
OFFSET=0x9e3779b9 OFFSET_DEC=$((0x9e3779b9))
SHIFT_QUEUE=7

section "network: client — r1 (shifts tcp.seq by $OFFSET) — r2 — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe 4
SHIFTER=$(net_router 1)

# seqshift_start NS FAM PORT: seqshift on queue SHIFT_QUEUE of router NS for
# the connections to PORT (both ways), with the rules feeding it. No
# --queue-bypass: if seqshift dies, the traffic stops and the test fails
# loudly instead of running unshifted.
seqshift_start() {
  local ns=$1 fam=$2 port=$3 name="seqshift-$2" tool=iptables dir
  [[ $fam == 6 ]] && tool=ip6tables
  bg_start "$name" ip netns exec "$ns" "$SEQSHIFT" $SHIFT_QUEUE "$port" $OFFSET
  wait_until 5 grep -q ready "${BG_OUT[$name]}" ||
    { show_file "$name stderr" "${BG_ERR[$name]}"; return 1; }
  for dir in --dport --sport; do
    ns_exec "$ns" "$tool" -t mangle -A FORWARD -p tcp "$dir" "$port" -j NFQUEUE --queue-num $SHIFT_QUEUE || return 1
  done
  log "seqshift in ${ns#"$NET_PREFIX"} (pid ${BG_PID[$name]}): tcp port $port, IPv$fam, offset $OFFSET"
}

# seqshift_stop NS FAM PORT: its rules out, then seqshift (its summary).
seqshift_stop() {
  local ns=$1 fam=$2 port=$3 name="seqshift-$2" tool=iptables dir
  [[ $fam == 6 ]] && tool=ip6tables
  for dir in --dport --sport; do
    ns_exec "$ns" "$tool" -t mangle -D FORWARD -p tcp "$dir" "$port" -j NFQUEUE --queue-num $SHIFT_QUEUE
  done
  bg_stop "$name"
}

# seqshift_count FILE FIELD: a number from seqshift's summary line.
seqshift_count() {
  local pat
  case $2 in
    seen) pat='seen ([0-9]+)' ;;
    to_server) pat='to the server \(seq \+[0-9]+\) ([0-9]+)' ;;
    to_client) pat='to the client \(ack/SACK -[0-9]+\) ([0-9]+)' ;;
    sack) pat='with ([0-9]+) SACK blocks' ;;
    unreadable) pat='unreadable ([0-9]+)' ;;
  esac
  sed -nE "s#.*$pat.*#\\1#p" "$1" | head -n1
}

# changes_at REC: "ttl kind tcp.seq-listed(true|false)" per reply of a trace.
changes_at() {
  jq -r '.hops[] | .ttl as $t | .replies[]
         | "\($t) \(.kind) \((.changes // []) | index("tcp.seq") != null)"' <<<"$1"
}
# seq_changes_ok REC: replies of routers at TTL >= 2 list tcp.seq, TTL 1's
# do not; there is at least one router reply at TTL 1, 2 and 3.
seq_changes_ok() {
  local rec=$1 bad
  bad=$(changes_at "$rec" | awk '$2 != "destination" && (($1 >= 2) != ($3 == "true"))')
  if [[ -n $bad ]]; then echo "  replies with the wrong changes (ttl kind tcp.seq-listed):"; echo "$bad" | sed 's/^/    /'; return 1; fi
  local t
  for t in 1 2 3; do
    changes_at "$rec" | awk -v t="$t" '$1 == t && $2 != "destination" { f = 1 } END { exit !f }' ||
      { echo "  no router reply at ttl $t"; return 1; }
  done
}
# hop_lines_seq_ok FILE: the live hop lines say the same as the trace.
hop_lines_seq_ok() {
  local bad
  bad=$(jq -R -r 'fromjson? | select(type == "object" and .type == "hop" and .kind != "destination")
                  | "\(.ttl) \(.kind) \((.changes // []) | index("tcp.seq") != null)"' "$1" |
        awk '($1 >= 2) != ($3 == "true")')
  [[ -z $bad ]] && return 0
  echo "  hop lines with the wrong changes (ttl kind tcp.seq-listed):"; echo "$bad" | sed 's/^/    /'; return 1
}

for fam in 4 6; do
  port=$((5000 + fam))
  section "IPv$fam: seqshift on r1, nfqtrace on the client (--dport $port), during a 2 MiB upload"
  require "IPv$fam: seqshift runs on r1 with its rules" seqshift_start "$SHIFTER" $fam $port
  traced_transfer upload "nfq$fam" $fam $port 2048 "$(net_client)" "$NFQ" \
    --dport $port --mode dup --count 1 --format json --timeout 1

  section "IPv$fam: reference and comparison"
  # traceroute -T's SYNs to the port go through seqshift too: harmless, it
  # reads the routers' errors by ports.
  reference_trace client $fam $port "$NET_TMP/tr$fam"
  seqshift_stop "$SHIFTER" $fam $port
  show_file "seqshift stderr" "${BG_ERR[seqshift-$fam]}" 5
  show_file "nfqtrace stderr" "${BG_ERR[nfq$fam]}" 10
  check_one_trace "nfq$fam" "IPv$fam trace" "$NET_TMP/tr$fam" dup \
    "$(net_client_addr $fam)" "$(net_server_addr $fam)" $port
  rec=$(trace_records "${BG_OUT[nfq$fam]}" | head -n1)
  [[ -n $rec ]] || rec='{"hops":[]}'   # (the checks above said so already)
  echo "  changes per reply (count, ttl, kind, tcp.seq listed):"
  changes_at "$rec" | sort -n | uniq -c | sed 's/^/    /'
  check "IPv$fam: one rewrite, tcp.seq by $OFFSET ($OFFSET_DEC) from ttl 2 (got $(jq -c '.rewrites' <<<"$rec"))" \
    json_true "$rec" ".rewrites == [{\"field\":\"tcp.seq\",\"offset\":$OFFSET_DEC,\"first_seen_ttl\":2}]"
  check "IPv$fam: router replies at ttl >= 2 list tcp.seq in changes, ttl 1's do not" seq_changes_ok "$rec"
  check "IPv$fam: the live hop lines list tcp.seq the same way" hop_lines_seq_ok "${BG_OUT[nfq$fam]}"

  err=${BG_ERR[seqshift-$fam]}
  check "IPv$fam: seqshift shifted packets both ways (harness; to the server $(seqshift_count "$err" to_server), to the client $(seqshift_count "$err" to_client) with $(seqshift_count "$err" sack) SACK blocks)" \
    test "$(seqshift_count "$err" to_server)" -gt 0 -a "$(seqshift_count "$err" to_client)" -gt 0 -a "$(seqshift_count "$err" sack)" -gt 0
  check "IPv$fam: seqshift read every packet it was given (harness; unreadable $(seqshift_count "$err" unreadable))" \
    test "$(seqshift_count "$err" unreadable)" = 0
  bg_stop "upload-server-$port"
done
net_finish
