#!/usr/bin/env bash
# `cmake --install` of a build, staged with DESTDIR: everything lands under
# the prefix; the programs are stripped and their debug information
# installable apart; the systemd units name the prefix's programs and pass
# `systemd-analyze verify`; the man pages are there; and a program outside
# the tree builds against the installed library both ways, CMake package
# and pkg-config, and runs (docs/examples/engine_loop.cpp: parses a packet,
# feeds the engine one event). No root needed.
#   bash tests/package/install_test.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
example=$source_dir/docs/examples/engine_loop.cpp
expected='trace 10.0.0.2:40000 -> 192.0.2.7:443 round 1 (dup): stopped, 0 hops, 8 probes'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; status=1; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
stage=$work/stage
DESTDIR=$stage cmake --install "$build" --strip >/dev/null
DESTDIR=$stage cmake --install "$build" --component debuginfo >/dev/null
root=$stage$prefix

outside=$(cd "$stage" && find . -type f -o -type l | sed 's|^\.||' | grep -v "^$prefix/" || true)
[[ -z $outside ]] && pass "nothing installed outside $prefix" || fail "installed outside $prefix: $outside"

for program in nfqtrace nfqtrace-server nfqtrace-client; do
  if readelf -S "$root/bin/$program" | grep -q '\.debug_info'; then
    fail "$program is not stripped"
  else
    pass "$program stripped ($(stat -c %s "$root/bin/$program") bytes)"
  fi
  id=$(readelf -n "$root/bin/$program" | sed -n 's/.*Build ID: //p')
  debug=$root/lib/debug/.build-id/${id:0:2}/${id:2}.debug
  [[ -f $debug ]] && pass "its debug information apart: lib/debug/.build-id/${id:0:2}/${id:2}.debug" \
                  || fail "no debug file for $program ($debug)"
done

for page in nfqtrace nfqtrace-server nfqtrace-client; do
  [[ -f $root/share/man/man8/$page.8 ]] && pass "man page $page(8)" || fail "no man page $page(8)"
done

units=$root/lib/systemd/system
for unit in nfqtrace-server.service nfqtrace@.service; do
  exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$units/$unit")
  [[ $exec_start == "$prefix/bin/"* ]] && pass "$unit runs $exec_start" || fail "$unit runs $exec_start"
done
if command -v systemd-analyze >/dev/null; then
  # verify wants the programs the units run and the man pages they name: the
  # staged ones here (the Debian package test verifies them installed).
  for unit in nfqtrace-server.service nfqtrace@.service; do
    sed "s|$prefix/bin/|$root/bin/|" "$units/$unit" >"$work/$unit"
  done
  mv "$work/nfqtrace@.service" "$work/nfqtrace@443.service"
  if out=$(MANPATH=$root/share/man systemd-analyze verify "$work/nfqtrace-server.service" \
             "$work/nfqtrace@443.service" 2>&1); then
    pass "systemd-analyze verify: both units"
  else
    fail "systemd-analyze verify: $out"
  fi
fi

# The installed library, through its CMake package.
if cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$root" -DEXAMPLE="$example" \
     -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/consumer" >>"$work/cmake.log" 2>&1; then
  out=$("$work/consumer/engine_loop")
  [[ $out == *"$expected"* ]] && pass "find_package(nfqtrace): built and ran" || fail "CMake-built program printed: $out"
else
  fail "find_package(nfqtrace) build: $(tail -20 "$work/cmake.log")"
fi

# And through pkg-config.
pc_dir=$(dirname "$(find "$root" -name nfqtrace.pc | head -1)")
if flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs nfqtrace) &&
   # shellcheck disable=SC2086
   c++ -O1 "$example" -o "$work/engine_loop_pc" $flags 2>"$work/pc.log"; then
  out=$("$work/engine_loop_pc")
  [[ $out == *"$expected"* ]] && pass "pkg-config nfqtrace: built and ran" || fail "pkg-config-built program printed: $out"
else
  fail "pkg-config nfqtrace build: $(tail -20 "$work/pc.log")"
fi
exit $status
