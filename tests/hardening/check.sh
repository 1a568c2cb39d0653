#!/usr/bin/env bash
# The installed programs carry the hardening distributions give programs
# that parse hostile packets: fortified libc calls, stack protector, full
# RELRO and PIE, as checksec (Debian's checksec package) reads them.
#   bash tests/hardening/check.sh BUILD_DIR
set -euo pipefail
build=$1
command -v checksec >/dev/null || { echo "SKIP: checksec is not installed (scripts/setup installs it)"; exit 77; }
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
status=0
for program in nfqtrace nfqtrace-server nfqtrace-client; do
  report=$(checksec --file="$prefix/bin/$program" --output=json)
  for want in '"relro":"full"' '"canary":"yes"' '"pie":"yes"' '"fortify_source":"yes"'; do
    if [[ $report != *"$want"* ]]; then
      echo "FAIL: $program: checksec does not report $want: $report"
      status=1
    fi
  done
  [[ $status == 0 ]] && echo "PASS: $program: full RELRO, stack protector, PIE, fortified"
done
exit $status
