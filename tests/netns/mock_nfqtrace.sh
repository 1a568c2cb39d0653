#!/usr/bin/env bash
# mock_nfqtrace.sh — a stand-in for nfqtrace that follows its command-line
# contract (rules, --count, signals, JSON Lines) but finds hops by running
# traceroute -T toward each new connection's peer. It is NOT parasitic; it
# only exists to validate the test harness while the real tool is not there:
#   bash tests/netns/test_ipv4_forward.sh tests/netns/mock_nfqtrace.sh
# Understood: --dport --sport --mode --count --format json --queue-id
# --ttlrepeat --timeout; other options are accepted and ignored.
set -euo pipefail

dports="" sports="" mode=dup count=0 queue=0 ttlrepeat=3
while (( $# )); do
  case $1 in
    --dport) dports=$2; shift ;;
    --sport) sports=$2; shift ;;
    --mode) mode=$2; shift ;;
    --count) count=$2; shift ;;
    --queue-id) queue=$2; shift ;;
    --ttlrepeat) ttlrepeat=$2; shift ;;
    --format|--timeout|--maxttl|--gaplimit|--packetfreq|--repeat|--max-flows|--log-file|--queue-size|--host|--interface) shift ;;
    --no-rules) ;;
    *) echo "mock_nfqtrace: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

rules() {  # rules -A|-D: our chain in mangle OUTPUT, one NFQUEUE rule per port
  local op=$1 ipt p
  for ipt in iptables ip6tables; do
    if [[ $op == -A ]]; then
      $ipt -t mangle -N NFQTRACE
      for p in ${dports//,/ }; do $ipt -t mangle -A NFQTRACE -p tcp --dport "$p" -j NFQUEUE --queue-num "$queue" --queue-bypass; done
      for p in ${sports//,/ }; do $ipt -t mangle -A NFQTRACE -p tcp --sport "$p" -j NFQUEUE --queue-num "$queue" --queue-bypass; done
      $ipt -t mangle -A OUTPUT -j NFQTRACE
    else
      $ipt -t mangle -D OUTPUT -j NFQTRACE 2>/dev/null || true
      $ipt -t mangle -F NFQTRACE 2>/dev/null || true
      $ipt -t mangle -X NFQTRACE 2>/dev/null || true
    fi
  done
}
stop() { rules -D; exit 0; }
trap stop INT TERM
rules -A
echo "mock_nfqtrace: rules installed" >&2

now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }

# trace_flow SRC SPORT DST DPORT: traceroute -T toward the peer, as JSON.
trace_flow() {
  local src=$1 sport=$2 dst=$3 dport=$4 fam=4 start flow raw
  [[ $dst == *:* ]] && fam=6
  # (For a server-side flow the peer's port is ephemeral and closed to a
  # new connection: the peer answers traceroute's SYN with a RST, fine.)
  local port=$dport
  start=$(now)
  flow=$(jq -cn --arg s "$src" --argjson sp "$sport" --arg d "$dst" --argjson dp "$dport" \
    '{src: $s, sport: $sp, dst: $d, dport: $dp}')
  raw=$(traceroute -"$fam" -T -n -p "$port" -q "$ttlrepeat" -m 30 "$dst" 2>/dev/null || true)
  local hops="[]" reached=false
  while read -r ttl rest; do
    [[ $ttl =~ ^[0-9]+$ ]] || continue
    local replies="[]" tok prev=""
    for tok in $rest; do
      if [[ $tok =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $tok =~ ^[0-9a-f:]+:[0-9a-f:]*$ ]]; then
        prev=$tok
      elif [[ $tok =~ ^[0-9.]+$ && -n $prev ]]; then
        local t; t=$(now)
        jq -cn --argjson f "$flow" --argjson ttl "$ttl" --arg a "$prev" --argjson r "$tok" --arg t "$t" \
          '{type: "hop", flow: $f, round: 1, ttl: $ttl, addr: $a, rtt_ms: $r, time: $t}'
        replies=$(jq -c --arg a "$prev" --argjson r "$tok" --arg t "$t" '. + [{addr: $a, rtt_ms: $r, time: $t}]' <<<"$replies")
        [[ $prev == "$dst" ]] && reached=true
      fi
    done
    hops=$(jq -c --argjson ttl "$ttl" --argjson r "$replies" '. + [{ttl: $ttl, replies: $r}]' <<<"$hops")
  done < <(tail -n +2 <<<"$raw")
  [[ $fault == wrong_hop ]] && hops=$(jq -c '.[1].replies[0].addr = "192.0.2.99"' <<<"$hops")
  [[ $fault == no_trace ]] && return 0
  jq -cn --argjson f "$flow" --arg m "$mode" --arg s "$start" --arg e "$(now)" --argjson h "$hops" \
    --argjson re "$reached" \
    '{type: "trace", flow: $f, round: 1, mode: $m, start: $s, end: $e, reached: $re,
      reason: (if $re then "reached" else "maxttl" end), hops: $h}'
}

# MOCK_FAULT makes the stand-in misbehave, to prove the tests notice:
# leave_rules, exit1, wrong_hop, no_trace, hang.
fault=${MOCK_FAULT:-}
declare -A traced=()
done_count=0
while (( count == 0 || done_count < count )); do
  # Established connections on our ports: local address:port, peer address:port.
  while read -r local peer; do
    [[ -n ${traced[$local $peer]:-} ]] && continue
    lport=${local##*:} laddr=${local%:*} pport=${peer##*:} paddr=${peer%:*}
    laddr=${laddr#[} laddr=${laddr%]} paddr=${paddr#[} paddr=${paddr%]}
    match=0
    for p in ${dports//,/ }; do [[ $pport == "$p" ]] && match=1; done
    for p in ${sports//,/ }; do [[ $lport == "$p" ]] && match=1; done
    (( match )) || continue
    traced[$local $peer]=1
    trace_flow "$laddr" "$lport" "$paddr" "$pport" &
  done < <(ss -Htn state established | awk '{ print $3, $4 }')
  wait
  done_count=${#traced[@]}
  sleep 0.2
done
[[ $fault == hang ]] && sleep 1000
[[ $fault == leave_rules ]] || rules -D
[[ $fault == exit1 ]] && exit 1
exit 0
