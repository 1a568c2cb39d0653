#!/usr/bin/env bash
# The Debian package as an administrator gets it (root; run by scripts/test
# after scripts/package): lintian finds nothing docs/packaging.md does not
# explain; `apt-get install ./nfqtrace_*.deb` with the capabilities question
# answered yes; --version, the man pages, the units; a trace with the
# installed program across a namespace network, equal to traceroute -T;
# then remove and purge leave nothing behind: no file, group, user, stat
# override, debconf answer or rule. The package is purged however the test
# ends. It refuses to run where nfqtrace is already installed (not ours to
# remove).
#   bash tests/package/deb_test.sh DIR_WITH_THE_DEB
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../netns/lib.sh"
net_init deb_package apt-get dpkg lintian man systemd-analyze debconf-set-selections
deb_dir=$(realpath "${1:-build-package}")
deb=$(ls "$deb_dir"/nfqtrace_*.deb 2>/dev/null | head -1)
require "the package was built (scripts/package): ${deb:-none in $deb_dir}" test -f "$deb"
if dpkg-query -W -f='${Status}' nfqtrace 2>/dev/null | grep -q installed; then
  echo "SKIP: nfqtrace is already installed here: not removing an installation that is not this test's"
  exit 77
fi

purge_package() {
  if dpkg-query -W -f='${Status}' nfqtrace 2>/dev/null | grep -qv not-installed; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq nfqtrace >/dev/null 2>&1
  fi
  echo PURGE | debconf-communicate nfqtrace >/dev/null 2>&1
}
no_nfqtrace_rules_here() {
  ! { iptables-save; ip6tables-save; nft list ruleset; } 2>/dev/null | grep -qi nfqtrace
}
# set +e first: errexit holds in a trap too, and a purge with nothing left to
# purge fails (debconf-communicate), which would end the trap before
# net_cleanup deletes the namespaces.
deb_cleanup() { local rc=$?; set +e; purge_package; (exit "$rc"); net_cleanup; }
trap deb_cleanup EXIT

section "lintian"
lintian --tag-display-limit 0 "$deb" >"$NET_TMP/lintian" 2>&1 || true
show_file "lintian $(basename "$deb")" "$NET_TMP/lintian" 40
unexplained=()
for tag in $(awk -F': ' '/^[EWIP]: / { split($3, t, " "); print t[1] }' "$NET_TMP/lintian" | sort -u); do
  grep -q -- "\`$tag\`" "$here/../../docs/packaging.md" || unexplained+=("$tag")
done
check "every lintian tag is explained in docs/packaging.md (unexplained: ${unexplained[*]:-none})" \
  test ${#unexplained[@]} -eq 0

section "install, with file capabilities for the group nfqtrace"
echo "nfqtrace nfqtrace/capabilities boolean true" | debconf-set-selections
started=$(date +%s)
rc=0; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$NET_TMP/apt" 2>&1 || rc=$?
(( rc == 0 )) || show_file "apt-get install" "$NET_TMP/apt" 30
require "apt-get install ./$(basename "$deb") (exit status $rc)" test "$rc" -eq 0
dpkg -L nfqtrace | sort >"$NET_TMP/files"
check "nfqtrace --version names $(dpkg-query -W -f='${Version}' nfqtrace)" \
  bash -c "nfqtrace --version | head -1 | grep -q \"^nfqtrace $(dpkg-query -W -f='${Version}' nfqtrace)\""
nfqtrace --version | sed 's/^/    /'
for page in nfqtrace nfqtrace-server nfqtrace-client; do
  check "man -w $page: $(man -w "$page" 2>&1)" bash -c "man -w $page >/dev/null"
done
for program in nfqtrace nfqtrace-server nfqtrace-client; do
  check "$program: cap_net_admin,cap_net_raw=ep ($(getcap "/usr/bin/$program"))" \
    bash -c "getcap /usr/bin/$program | grep -q 'cap_net_admin,cap_net_raw=ep'"
  check "$program: root:nfqtrace 0750 ($(stat -c '%U:%G %a' "/usr/bin/$program"))" \
    test "$(stat -c '%U:%G %a' "/usr/bin/$program")" = "root:nfqtrace 750"
done
units=/lib/systemd/system
cp "$units/nfqtrace@.service" "$NET_TMP/nfqtrace@443.service"
check "systemd-analyze verify: the installed units" \
  systemd-analyze verify "$units/nfqtrace-server.service" "$NET_TMP/nfqtrace@443.service"
for unit in "$units/nfqtrace-server.service" "$NET_TMP/nfqtrace@443.service"; do
  log "systemd-analyze security $(basename "$unit"): $(systemd-analyze security --offline=yes "$unit" 2>/dev/null | tail -1)"
done

section "a trace with the installed program"
forward_upload_test 4 2 /usr/bin/nfqtrace

section "remove, then purge"
check "apt-get remove" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq nfqtrace >/dev/null 2>&1
check "the conffile stays until purge" test -f /etc/default/nfqtrace-server
check "apt-get purge" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq nfqtrace >/dev/null 2>&1
left=()
while read -r path; do
  [[ -d $path ]] && continue  # shared directories (/usr/bin, ...) stay
  [[ -e $path || -L $path ]] && left+=("$path")
done <"$NET_TMP/files"
[[ -e /etc/default/nfqtrace-server ]] && left+=(/etc/default/nfqtrace-server)
check "no file of the package is left (${left[*]:-none})" test ${#left[@]} -eq 0
check "dpkg knows nothing of it" bash -c "! dpkg-query -W nfqtrace 2>/dev/null | grep -q ."
check "no group nfqtrace" bash -c "! getent group nfqtrace"
check "no user named nfqtrace (DynamicUser leaves none)" bash -c "! getent passwd | grep -q nfqtrace"
check "no stat override" bash -c "! dpkg-statoverride --list | grep -q nfqtrace"
check "no debconf answer" bash -c "! debconf-show nfqtrace 2>/dev/null | grep -q ."
check "no nfqtrace rule on this host" no_nfqtrace_rules_here
log "package test: $(( $(date +%s) - started )) s from install to purge"
net_finish
