#!/usr/bin/env bash
# MPLS label stacks (RFC 4950 extensions, RFC 4884): r2 acts as a label
# switching router. The kernels here cannot route MPLS, so r2's own ICMP
# time-exceeded errors go through an NFQUEUE to the mplsext helper
# (tools/testnet/mplsext.cpp), which pads the quote to 128 bytes, appends an
# extension structure with the stack 24001/0/0/254,16/5/1/255 and fixes the
# lengths and checksums. Over IPv4 and IPv6 the client's nfqtrace must
# report, on every reply from ttl 2 (trace object and hop lines), exactly
# that stack as "mpls", and no "mpls" at any other ttl; in text mode the
# stack as mtr shows it. Independent oracles: tcpdump -vv of the ICMP the
# client received (extension checksum and first stack entry decoded by
# tcpdump for IPv4, ICMP checksums for both families, and the extension's
# bytes on the wire, worked out from the RFCs by hand) and traceroute -T -e,
# which decodes the whole stack for both families. Mangle mode (whole
# packets in the queue) once over IPv4. (mock_nfqtrace.sh fails here: it
# reports no mpls.)
# Usage: bash test_mpls.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init mpls tcpdump
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
net_helpers "$NFQ"   # mplsext
MPLS_QUEUE=7
MPLS_STACK="24001/0/0/254,16/5/1/255"
# What nfqtrace must report (JSON), mtr's notation (text), traceroute -e's.
WANT_JSON='[{"label":24001,"tc":0,"s":0,"ttl":254},{"label":16,"tc":5,"s":1,"ttl":255}]'
WANT_TEXT='[MPLS: Lbl 24001 TC 0 S 0 TTL 254] [MPLS: Lbl 16 TC 5 S 1 TTL 255]'
WANT_TRACEROUTE='<MPLS:L=24001,E=0,S=0,T=254/L=16,E=5,S=1,T=255>'
# The extension structure on the wire, from RFC 4884 / RFC 4950 by hand:
# header 2000 (version 2) + checksum bc18; object: length 000c, class 01
# (MPLS label stack), c-type 01 (incoming); entries label<<12|tc<<9|s<<8|ttl:
# 24001<<12|254 = 05dc10fe, 16<<12|5<<9|1<<8|255 = 00010bff.
WANT_EXT_HEX=2000bc18000c010105dc10fe00010bff

# ------------------------------------------------------------ the MPLS router

# mpls_router NS: NS's own time-exceeded errors get the extension (mplsext on
# MPLS_QUEUE, fed from the mangle OUTPUT chain). No bypass: if mplsext dies,
# the router goes silent and the test fails loudly.
mpls_router() {
  local ns=$1 bin name
  bin=$(net_helper mplsext) || exit 1
  name="mplsext-${ns#"$NET_PREFIX"}"
  bg_start "$name" ip netns exec "$ns" "$bin" "$MPLS_QUEUE" "$MPLS_STACK"
  wait_until 5 grep -q ready "${BG_OUT[$name]}" || { show_file "$name stderr" "${BG_ERR[$name]}"; die "mplsext did not start in $ns"; }
  cat "${BG_OUT[$name]}"
  ns_exec "$ns" iptables -t mangle -A OUTPUT -p icmp --icmp-type time-exceeded -j NFQUEUE --queue-num "$MPLS_QUEUE"
  ns_exec "$ns" ip6tables -t mangle -A OUTPUT -p ipv6-icmp --icmpv6-type time-exceeded -j NFQUEUE --queue-num "$MPLS_QUEUE"
}

# mpls_router_stop NS: removes the rules, then ends mplsext (its summary is
# shown); no queue rule may be left in NS.
mpls_router_stop() {
  local ns=$1 name="mplsext-${1#"$NET_PREFIX"}"
  ns_exec "$ns" iptables -t mangle -D OUTPUT -p icmp --icmp-type time-exceeded -j NFQUEUE --queue-num "$MPLS_QUEUE"
  ns_exec "$ns" ip6tables -t mangle -D OUTPUT -p ipv6-icmp --icmpv6-type time-exceeded -j NFQUEUE --queue-num "$MPLS_QUEUE"
  bg_stop "$name"
  sed 's/^/  /' "${BG_ERR[$name]}"
  check "mplsext exited; no queue rule left in r2" no_nfqtrace_rules "$ns"
  check "mplsext: no packet it could not parse, no netlink error" \
    grep -q 'unparsable 0, receive overruns 0, netlink errors 0' "${BG_ERR[$name]}"
}

# ------------------------------------------------------------ nfqtrace's output

# hops_mpls_ok FILE: every reply at ttl 2 (trace objects and hop lines)
# carries WANT_JSON as "mpls", and there is at least one; no reply at any
# other ttl has "mpls".
hops_mpls_ok() {
  local out=$1 bad n
  bad=$(jq -R -c --argjson want "$WANT_JSON" 'fromjson? | select(type == "object")
          | if .type == "hop" then select((.ttl == 2 and .mpls != $want) or (.ttl != 2 and has("mpls")))
            elif .type == "trace" then .hops[] | .ttl as $t | .replies[]
              | select(($t == 2 and .mpls != $want) or ($t != 2 and has("mpls"))) | {ttl: $t} + .
            else empty end' "$out" | head -5)
  if [[ -n $bad ]]; then
    echo "  replies with a wrong (or missing, or unexpected) mpls:"; echo "$bad" | cut -c1-300 | sed 's/^/    /'
    return 1
  fi
  n=$(jq -R -c 'fromjson? | select(type == "object" and .type == "trace") | .hops[] | select(.ttl == 2) | .replies[]' "$out" | wc -l)
  (( n > 0 )) || { echo "  no reply at ttl 2 in the trace"; return 1; }
  echo "  $n replies at ttl 2 in the trace, $(jq -R -c 'fromjson? | select(type == "object" and .type == "hop" and .ttl == 2)' "$out" | wc -l) hop lines, each with mpls $WANT_JSON"
}

# no_refused_icmp NAME: nfqtrace's summary names no ICMP it could not read,
# no extension it refused.
no_refused_icmp() {
  local err=${BG_ERR[$1]}
  grep -E '^nfqtrace: ' "$err" | sed 's/^/    /'
  ! grep -q -E 'bad_extensions|unreadable ICMP' "$err"
}

# text_mpls_ok FILE: the text output's ttl 2 line shows the stack after every
# RTT, no other line shows one.
text_mpls_ok() {
  local out=$1 line rtts stacks
  line=$(grep -E '^ +2 ' "$out" | head -n1)
  echo "    $line"
  rtts=$(grep -o ' ms' <<<"$line" | wc -l)
  stacks=$(grep -o -F " ms $WANT_TEXT" <<<"$line" | wc -l)
  (( rtts > 0 && rtts == stacks )) || { echo "  ttl 2: $rtts RTTs, $stacks followed by '$WANT_TEXT'"; return 1; }
  if grep -v -E '^ +2 ' "$out" | grep -q -F '[MPLS'; then
    echo "  a line other than ttl 2 shows MPLS:"; grep -v -E '^ +2 ' "$out" | grep -F '[MPLS' | sed 's/^/    /'
    return 1
  fi
}

# ------------------------------------------------------------ the wire

# icmp_hex PCAP FILTER: one line per matching packet, the IP packet in hex.
icmp_hex() {
  tcpdump -n -x -r "$1" "$2" 2>/dev/null |
    awk '/^[0-9]/ { if (h != "") print h; h = ""; next }
         /^\t0x/ { for (i = 2; i <= NF; i++) h = h $i }
         END { if (h != "") print h }'
}

# wire_ext_ok FAM PCAP: every time-exceeded r2 sent the client carries the
# extension, byte for byte as WANT_EXT_HEX, after a 128-byte quote whose
# length is in the ICMP header, in a packet whose lengths agree; the other
# routers' time-exceeded carry none. tcpdump -vv agrees: checksums right,
# and (IPv4; tcpdump decodes no ICMPv6 extension) the extension and the
# first stack entry decoded.
wire_ext_ok() {
  local fam=$1 pcap=$2 r2 filter ok=0 n=0 hex others=0 v
  r2=$(link_addr "$fam" 1 2 2)
  if [[ $fam == 4 ]]; then filter="icmp and icmp[0] == 11"; else filter="icmp6 and ip6[40] == 3"; fi
  while read -r hex; do
    n=$((n + 1))
    if [[ $fam == 4 ]]; then
      # IP total length 172 = 20 + 8 + 128 + 16; ICMP byte 5: 128 / 4 = 0x20.
      [[ ${hex:4:4} == 00ac && ${hex:50:2} == 20 && ${#hex} == 344 ]] ||
        { echo "  IPv4 time-exceeded from r2 with wrong lengths: ${hex:0:60}... (${#hex} hex digits)"; ok=1; }
    else
      # Payload length 152 = 8 + 128 + 16; ICMPv6 byte 4: 128 / 8 = 0x10.
      [[ ${hex:8:4} == 0098 && ${hex:88:2} == 10 && ${#hex} == 384 ]] ||
        { echo "  IPv6 time-exceeded from r2 with wrong lengths: ${hex:0:96}... (${#hex} hex digits)"; ok=1; }
    fi
    [[ ${hex: -32} == "$WANT_EXT_HEX" ]] ||
      { echo "  extension on the wire ${hex: -32}, expected $WANT_EXT_HEX"; ok=1; }
  done < <(icmp_hex "$pcap" "src host $r2 and $filter")
  (( n > 0 )) || { echo "  no time-exceeded from r2 ($r2) captured"; return 1; }
  # The other routers: RFC 4884 length 0, no extension.
  while read -r hex; do
    others=$((others + 1))
    if [[ $fam == 4 ]]; then v=${hex:50:2}; else v=${hex:88:2}; fi
    [[ $v == 00 ]] || { echo "  a time-exceeded from another router has RFC 4884 length 0x$v"; ok=1; }
  done < <(icmp_hex "$pcap" "not src host $r2 and $filter")
  (( others > 0 )) || { echo "  no time-exceeded from r1 or r3 captured"; ok=1; }
  echo "  $n time-exceeded from r2 (each with the extension), $others from r1 and r3 (none)"

  # tcpdump's own decoding.
  tcpdump -vv -n -r "$pcap" "$filter" >"$pcap.vv" 2>/dev/null
  if grep -q -E 'wrong icmp cksum|bad cksum|bad icmp6 cksum|incorrect' "$pcap.vv"; then
    echo "  tcpdump -vv finds a bad checksum:"; grep -E 'wrong icmp cksum|bad cksum|bad icmp6 cksum|incorrect' "$pcap.vv" | head -3 | sed 's/^/    /'
    ok=1
  fi
  if [[ $fam == 4 ]]; then
    local ext obj lbl
    ext=$(grep -c -F 'ICMP Multi-Part extension v2, checksum 0xbc18 (correct), length 16' "$pcap.vv" || true)
    obj=$(grep -c -F 'MPLS Stack Entry Object (1), Class-Type: 1, length 12' "$pcap.vv" || true)
    lbl=$(grep -c -x -E '[[:space:]]+label 24001, tc 0, ttl 254' "$pcap.vv" || true)
    echo "  tcpdump -vv: $ext extensions (checksum correct), $obj MPLS objects of 2 entries, $lbl top entries 24001/tc 0/no S/ttl 254"
    (( ext == n && obj == n && lbl == n )) || { echo "  expected $n of each"; ok=1; }
    (( $(grep -c 'Multi-Part' "$pcap.vv") == n )) || { echo "  tcpdump decodes extensions from other routers too"; ok=1; }
  else
    local good
    good=$(grep -c -E "$r2 > .*\[icmp6 sum ok\] ICMP6, time exceeded" "$pcap.vv" || true)
    echo "  tcpdump -vv: $good of the $n ICMPv6 time-exceeded from r2 with [icmp6 sum ok]"
    (( good == n )) || ok=1
  fi
  return $ok
}

# traceroute_mpls_ok FAM PORT: traceroute -T -e, another decoder of the
# extension, shows the whole stack at ttl 2 and no stack elsewhere.
traceroute_mpls_ok() {
  local fam=$1 port=$2 raw="$NET_TMP/tr-e$1.raw"
  ns_exec "$(net_client)" traceroute -"$fam" -T -e -n -p "$port" -q 3 -m 16 "$(net_server_addr "$fam")" >"$raw" 2>&1 || true
  sed 's/^/    /' "$raw"
  grep -E '^ 2 ' "$raw" | grep -q -F "$WANT_TRACEROUTE" ||
    { echo "  ttl 2 without $WANT_TRACEROUTE"; return 1; }
  ! grep -v -E '^ 2 ' "$raw" | grep -q 'MPLS' || { echo "  MPLS at another ttl"; return 1; }
}

# ------------------------------------------------------------ the test

section "network: client — r1 — r2 (MPLS, stack $MPLS_STACK) — r3 — server"
net_build 3
net_icmp_ratelimit_off
net_describe 4
net_describe 6
R2=$(net_router 2)
mpls_router "$R2"

for fam in 4 6; do
  port=$((5000 + fam))
  section "IPv$fam: nfqtrace on the client (--dport $port), during a 1.5 MiB upload; ICMP captured"
  capture_start "cap$fam" "$(net_client)" fwd icmp or icmp6
  traced_transfer upload "nfq$fam" $fam $port 1536 "$(net_client)" "$NFQ" \
    --dport $port --mode dup --count 1 --format json
  capture_stop "cap$fam"

  section "IPv$fam: reference and comparison"
  reference_trace client $fam $port "$NET_TMP/tr$fam"
  check_one_trace "nfq$fam" "IPv$fam trace" "$NET_TMP/tr$fam" dup \
    "$(net_client_addr $fam)" "$(net_server_addr $fam)" $port
  check "IPv$fam: every reply at ttl 2 (trace and hop lines) has mpls $WANT_JSON, no other has mpls" \
    hops_mpls_ok "${BG_OUT[nfq$fam]}"
  check "IPv$fam: nfqtrace refused no ICMP (no bad_extensions, nothing unreadable)" no_refused_icmp "nfq$fam"
  check "IPv$fam: on the wire (tcpdump), r2's time-exceeded carry the extension, well formed; r1's and r3's none" \
    wire_ext_ok $fam "$NET_TMP/cap$fam.pcap"
  check "IPv$fam: traceroute -T -e decodes $WANT_TRACEROUTE at ttl 2 only" traceroute_mpls_ok $fam $port
done

section "IPv4: text output (--format text)"
port=5014
traced_transfer upload nfqtext 4 $port 1536 "$(net_client)" "$NFQ" \
  --dport $port --mode dup --count 1 --format text
show_file "nfqtrace text output" "${BG_OUT[nfqtext]}"
check "text: the trace reached the server" grep -q -E "^trace .* reached, 4 hops" "${BG_OUT[nfqtext]}"
check "text: ttl 2 shows '$WANT_TEXT' after every RTT, no other line MPLS" text_mpls_ok "${BG_OUT[nfqtext]}"
check "text: nfqtrace refused no ICMP" no_refused_icmp nfqtext

section "IPv4: --mode mangle (whole packets in the queue)"
port=5024
capture_start capm "$(net_client)" fwd icmp
traced_transfer upload nfqmangle 4 $port 1536 "$(net_client)" "$NFQ" \
  --dport $port --mode mangle --count 1 --format json
capture_stop capm
reference_trace client 4 $port "$NET_TMP/trm"
check_one_trace nfqmangle "IPv4 mangle trace" "$NET_TMP/trm" mangle \
  "$(net_client_addr 4)" "$(net_server_addr 4)" $port
check "mangle: every reply at ttl 2 has mpls $WANT_JSON, no other has mpls" hops_mpls_ok "${BG_OUT[nfqmangle]}"
check "mangle: nfqtrace refused no ICMP" no_refused_icmp nfqmangle
check "mangle: on the wire, r2's time-exceeded (quotes of whole segments, cut to 128 bytes) carry the extension, well formed" \
  wire_ext_ok 4 "$NET_TMP/capm.pcap"

section "cleanup of the MPLS router"
mpls_router_stop "$R2"
net_finish
