#!/usr/bin/env bash
# Names and AS numbers of hop addresses. A real DNS server (dnsmasq, from
# Debian's dnsmasq-base: no service of its own) in the server's namespace serves PTR records for the routers'
# and the server's addresses and Team Cymru-style TXT records for them
# (origin.asn.cymru.com / origin6, AS<n>.asn.cymru.com); the client's
# namespace resolves through it (/etc/netns/<ns>/resolv.conf, which
# `ip netns exec` bind-mounts over /etc/resolv.conf). nfqtrace on the client
# traces an upload (two rounds, --repeat) with --format json, five times:
#   default          names on hop objects and trace replies, no AS
#   -n               no names, no AS
#   --asn-db TSV     asn/as_name from tests/data/asn.tsv on every object, names
#   --asn-db MMDB    the same from tests/data/asn.mmdb (IPv6)
#   --asn-dns        asn/as_name from the TXT records, names (IPv6)
# Every name / AS written is the one served; the last round's trace carries
# them all (a name may come after the first objects, never a wrong one); a
# table's AS is on every object from the first (looked up at once).
# Skips (77) while nfqtrace has no --asn-db.
# Usage: bash test_names.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init names dnsmasq
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
# (The help read whole first: grep -q stops at its match, and the binary
# writing the rest would die of SIGPIPE, failing the pipe under pipefail.)
if ! grep -q -- '--asn-db' <<<"$("$NFQ" --help 2>/dev/null)"; then
  echo "SKIP: $NFQ has no --asn-db (name and AS look-ups not wired in)"; exit 77
fi
DATA="$NET_REPO_DIR/tests/data"
PORT=5001 KIB=800 ROUTERS=3

# /etc/netns/<client ns> goes at exit, whatever the exit path.
NETNS_ETC=""
names_cleanup() {
  local rc=$?
  [[ -n $NETNS_ETC ]] && rm -rf "$NETNS_ETC"
  (exit "$rc")
  net_cleanup
}
trap names_cleanup EXIT

section "network: client — r1 — r2 — r3 — server (the DNS server on the server)"
net_build $ROUTERS
net_icmp_ratelimit_off
net_describe 4
CLI=$(net_client) SRV=$(net_server)
DNS4=$(net_server_addr 4) DNS6=$(net_server_addr 6)

# What is served, by address: the hop addresses of a client trace (routers'
# client-side addresses, the server's), each family its own names.
# Link i is AS 64550+i to Cymru, 64520+i in asn.tsv, 64510+i in asn.mmdb.
nibbles() {  # 2001:db8:1:I::2 -> its reversed nibbles, dot-separated
  local i=$1 hex
  hex=$(printf '%04x%04x%04x%04x%04x%04x%04x%04x' 0x2001 0xdb8 1 "$i" 0 0 0 2)
  rev <<<"$hex" | sed 's/./&./g; s/\.$//'
}
EXPECT="$NET_TMP/expect.json"
CONF="$NET_TMP/dnsmasq.conf"
{
  cat <<CONF
port=53
listen-address=$DNS4
listen-address=$DNS6
bind-interfaces
no-resolv
no-hosts
no-poll
CONF
  for ((i = 1; i <= ROUTERS + 1; i++)); do
    host="r$i"; (( i == ROUTERS + 1 )) && host=server
    v4=$(link_addr 4 1 "$i" 2)
    rev4=$(awk -F. '{print $4"."$3"."$2"."$1}' <<<"$v4")
    echo "ptr-record=$rev4.in-addr.arpa,$host.v4.nfqt.test"
    echo "ptr-record=$(nibbles "$i").ip6.arpa,$host.v6.nfqt.test"
    echo "txt-record=$rev4.origin.asn.cymru.com,\"$((64550 + i)) | $(link_net 4 1 "$i") | ZZ | other | 2026-12-01\""
    echo "txt-record=$(nibbles "$i").origin6.asn.cymru.com,\"$((64550 + i)) | $(link_net 6 1 "$i") | ZZ | other | 2026-12-01\""
    echo "txt-record=AS$((64550 + i)).asn.cymru.com,\"$((64550 + i)) | ZZ | other | 2026-12-01 | CYMRU-HOP-$i, ZZ\""
  done
} >"$CONF"
{
  echo '{'
  for ((i = 1; i <= ROUTERS + 1; i++)); do
    host="r$i"; (( i == ROUTERS + 1 )) && host=server
    for fam in 4 6; do
      printf '"%s": {"name": "%s.v%s.nfqt.test", "tsv": [%d, "TSV-HOP-%d"], "mmdb": [%d, "MMDB-HOP-%d"], "dns": [%d, "CYMRU-HOP-%d, ZZ"]}' \
        "$(link_addr $fam 1 "$i" 2)" "$host" "$fam" $((64520 + i)) "$i" $((64510 + i)) "$i" $((64550 + i)) "$i"
      (( i == ROUTERS + 1 && fam == 6 )) || echo ','
    done
  done
  echo '}'
} >"$EXPECT"
show_file "dnsmasq.conf" "$CONF" 40

section "DNS server (dnsmasq) on the server, the client resolving through it"
# -d: in the foreground, logging to stderr; every query logged.
bg_start dns ip netns exec "$SRV" dnsmasq -d --log-queries --pid-file= --conf-file="$CONF"
dns_listening() { ns_exec "$SRV" ss -Hlun "sport = :53" | grep -q "$DNS4"; }
if ! wait_until 10 dns_listening; then
  show_file "dnsmasq stderr" "${BG_ERR[dns]}" 20
  require "dnsmasq listens on $DNS4:53" false
fi
NETNS_ETC="/etc/netns/$CLI"
mkdir -p "$NETNS_ETC"
printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$DNS4" >"$NETNS_ETC/resolv.conf"
check "the client's namespace sees the test resolv.conf" \
  bash -c "ip netns exec '$CLI' cat /etc/resolv.conf | grep -q 'nameserver $DNS4'"

# Every reply of the output: hop objects and each reply of each trace.
all_replies() {
  jq -R -c 'fromjson? | select(type == "object")
            | if .type == "hop" then . elif .type == "trace" then .hops[].replies[] else empty end' "$1"
}
# The last trace's replies.
last_replies() { trace_records "$1" | tail -n1 | jq -c '.hops[].replies[]'; }
# jq over the replies of FILE with the expectations as $e: true for every one.
every() {
  local what=$1 file=$2 filter=$3
  [[ -n $(all_replies "$file") ]] || return 1
  if [[ $what == last ]]; then last_replies "$file"; else all_replies "$file"; fi |
    jq -e -s --slurpfile e "$EXPECT" "(\$e[0]) as \$e | length > 0 and all(.[]; $filter)" >/dev/null
}

run() {  # run LABEL FAM ARGS...: one traced upload, two rounds
  local label=$1 fam=$2; shift 2
  section "$label (IPv$fam)"
  traced_transfer upload "$label" "$fam" "$PORT" "$KIB" "$CLI" "$NFQ" \
    --dport "$PORT" --mode dup --repeat 0.5 --count 2 --format json "$@"
  PORT=$((PORT + 1))
  local out=${BG_OUT[$label]}
  show_nfq_output "$out"
  printf -- '--- what each object says of its addresses (round ttl addr name asn as_name)\n'
  jq -R -r 'fromjson? | select(type == "object")
            | if .type == "hop" then "    hop   \(.round) \(.ttl) \(.addr) \(.name // "-") \(.asn // "-") \(.as_name // "-")"
              elif .type == "trace" then .round as $r | .hops[] | .ttl as $t | .replies[]
                | "    trace \($r) \($t) \(.addr) \(.name // "-") \(.asn // "-") \(.as_name // "-")"
              else empty end' "$out" | head -n 60
  check "$label: output is JSON Lines" json_lines_valid "$out"
  check "$label: two traces, the last reached the server" \
    json_true "$(trace_records "$out" | jq -s -c .)" \
    "length == 2 and (.[-1].reached == true) and (.[-1].hops | length) == $((ROUTERS + 1))"
}

NAME_RIGHT='(has("name") | not) or .name == $e[.addr].name'
NAME_THERE='.name == $e[.addr].name'
NO_NAME='has("name") | not'
NO_AS='(has("asn") or has("as_name")) | not'
as_is() { echo "(.asn == \$e[.addr].$1[0] and .as_name == \$e[.addr].$1[1])"; }
AS_RIGHT_DNS='((has("asn") or has("as_name")) | not) or (.asn == $e[.addr].dns[0] and ((has("as_name") | not) or .as_name == $e[.addr].dns[1]))'

run names 4
OUT=${BG_OUT[names]}
check "names: every name written is the served one" every all "$OUT" "$NAME_RIGHT"
check "names: the last trace has every hop's name" every last "$OUT" "$NAME_THERE"
check "names: the last round's hop objects have names" \
  bash -c "jq -R -c 'fromjson? | select(.type == \"hop\" and .round == 2)' '$OUT' | grep -q '\"name\":\"r1.v4.nfqt.test\"'"
check "names: no AS without --asn-db/--asn-dns" every all "$OUT" "$NO_AS"

run no_dns 4 -n
OUT=${BG_OUT[no_dns]}
check "-n: no name anywhere" every all "$OUT" "$NO_NAME"
check "-n: no AS" every all "$OUT" "$NO_AS"

run asn_tsv 4 --asn-db "$DATA/asn.tsv"
OUT=${BG_OUT[asn_tsv]}
check "--asn-db TSV: every object has the table's asn and as_name" every all "$OUT" "$(as_is tsv)"
check "--asn-db TSV: names still come" every last "$OUT" "$NAME_THERE"
check "--asn-db TSV: every name written is the served one" every all "$OUT" "$NAME_RIGHT"

run asn_mmdb 6 -n --asn-db "$DATA/asn.mmdb"
OUT=${BG_OUT[asn_mmdb]}
check "--asn-db MMDB (IPv6): every object has the table's asn and as_name" every all "$OUT" "$(as_is mmdb)"
check "--asn-db MMDB -n: no name" every all "$OUT" "$NO_NAME"

run asn_dns 6 --asn-dns
OUT=${BG_OUT[asn_dns]}
check "--asn-dns (IPv6): every AS written is the served one" every all "$OUT" "$AS_RIGHT_DNS"
check "--asn-dns (IPv6): the last trace has every hop's asn and as_name" every last "$OUT" "$(as_is dns)"
check "--asn-dns (IPv6): the last trace has every hop's name" every last "$OUT" "$NAME_THERE"
check "--asn-dns (IPv6): every name written is the served one" every all "$OUT" "$NAME_RIGHT"

bg_stop dns
net_finish
