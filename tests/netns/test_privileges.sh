#!/usr/bin/env bash
# Least privilege and crash safety: once set up, nfqtrace runs as nobody
# with CAP_NET_ADMIN alone (only its rule keeper stays privileged, holding
# nothing but a pipe); SIGKILL during a transfer leaves the transfer intact
# and the rules gone within 2 s; a second instance on the same queue is
# refused with a clear message and leaves the first one's rules alone.
# Usage: bash test_privileges.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init privileges
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
FAM=4 PORT=5001

section "network: client — r1 — r2 — server"
net_build 2
CLI=$(net_client)

# status_field PID FIELD: a line of /proc/PID/status, without its name.
status_field() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
keeper_of() { pgrep -P "$1" -x nfqtrace-keeper | head -1; }

section "least privilege"
nfqtrace_start nfq "$CLI" "$NFQ" --dport $PORT --format json
PID=${BG_PID[nfq]}
# bg_start runs it through `ip netns exec`, which execs: the pid is nfqtrace's.
wait_until 5 test "$(status_field "$PID" Uid | awk '{print $1}')" = 65534 || true
uids=$(status_field "$PID" Uid)
check "runs as nobody (Uid: $uids)" test "$uids" = "65534 65534 65534 65534"
check "no supplementary groups" test -z "$(status_field "$PID" Groups)"
capeff=$(status_field "$PID" CapEff) capprm=$(status_field "$PID" CapPrm) capbnd=$(status_field "$PID" CapBnd)
check "effective capabilities: CAP_NET_ADMIN only ($capeff)" test "$capeff" = 0000000000001000
check "permitted capabilities: CAP_NET_ADMIN only ($capprm)" test "$capprm" = 0000000000001000
check "bounding set: CAP_NET_ADMIN only ($capbnd)" test "$capbnd" = 0000000000001000
check "no_new_privs set" test "$(status_field "$PID" NoNewPrivs)" = 1
KEEPER=$(keeper_of "$PID")
check "a rule keeper runs beside it" test -n "$KEEPER"
if [[ -n $KEEPER ]]; then
  fds=$(ls -l "/proc/$KEEPER/fd" | awk 'NR > 1 {print $NF}' | sort -u | tr '\n' ' ')
  check "the keeper holds no socket, only /dev/null, a pipe and stderr ($fds)" \
    bash -c "! ls -l /proc/$KEEPER/fd | grep -q socket:"
fi

section "a second instance on the same queue is refused"
rc=0
out=$(ip netns exec "$CLI" timeout 10 "$NFQ" --dport 5002 2>&1) || rc=$?
echo "    $out" | head -3
check "second instance exits non-zero ($rc)" test "$rc" -ne 0
check "with a clear message" grep -q "already in use" <<<"$out"
check "the first instance's rules are still there" nfqtrace_rules_present "$CLI"
check "the first instance still runs" bg_running nfq

section "SIGKILL during a transfer"
make_data "$NET_TMP/data" 1536
upload_server "$(net_server)" $FAM $PORT
upload_start up "$CLI" $FAM "$(net_server_addr $FAM)" $PORT "$NET_TMP/data"
sleep 0.5
kill -KILL "$PID"
killed_at=$(date +%s%N)
rules_gone() { ! nfqtrace_rules_present "$CLI"; }
wait_until 5 rules_gone || true
gone_ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
check "rules gone ${gone_ms} ms after SIGKILL (at most 2000)" test "$gone_ms" -le 2000
check "no rule left" no_nfqtrace_rules "$CLI"
keeper_gone() { ! kill -0 "${KEEPER:-0}" 2>/dev/null; }
check "the keeper has exited too" wait_until 2 keeper_gone
check "the upload completes" upload_wait $PORT 1 "$(stat -c %s "$NET_TMP/data")" 30
check "the upload arrives intact (sha256)" test "$(upload_received_shas $PORT)" = "$(sha_of "$NET_TMP/data")"
section "a non-root user, with file capabilities (setcap)"
if command -v setcap >/dev/null && command -v setpriv >/dev/null; then
  cp "$NFQ" "$NET_TMP/nfqtrace-cap"
  chmod 755 "$NET_TMP" "$NET_TMP/nfqtrace-cap"
  if setcap cap_net_admin,cap_net_raw+ep "$NET_TMP/nfqtrace-cap" 2>/dev/null; then
    nfqtrace_start capped "$CLI" setpriv --reuid=65534 --regid=65534 --clear-groups \
      "$NET_TMP/nfqtrace-cap" --dport 5003
    check "started by nobody, it installed its rules" nfqtrace_rules_present "$CLI"
    bg_signal capped INT
    rc=0; nfqtrace_wait capped 10 || rc=$?
    check "SIGINT: exit 0 ($rc)" test "$rc" -eq 0
    check "and its rules are gone" no_nfqtrace_rules "$CLI"
  else
    echo "    (this file system keeps no file capabilities: skipped)"
  fi
fi
net_finish
