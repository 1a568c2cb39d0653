#!/usr/bin/env bash
# The layer check passes on the tree as it is, and fails, naming the file,
# the line and the include, on a copy where a lower layer includes a higher
# one's header or a library it may not use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

bash "$here/check.sh" "$root" || { echo "FAIL: the layer check fails on the tree itself"; exit 1; }

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
mkdir -p "$copy/tests"
cp -r "$root/src" "$copy/src"
bash "$here/check.sh" "$copy" || { echo "FAIL: the check fails on an unchanged copy"; exit 1; }

# The engine reaching up into the formats, and the packet layer into fmt.
printf '#include "nfqtrace/output/format.hpp"\n' >>"$copy/src/core/engine.cpp"
sed -i '1i #include <fmt/format.h>' "$copy/src/wire/checksum.cpp"
set +e
report=$(bash "$here/check.sh" "$copy")
status=$?
set -e
echo "$report"
[[ $status == 1 ]] || { echo "FAIL: the check exited $status on forbidden includes"; exit 1; }
lines=$(wc -l <"$copy/src/core/engine.cpp")
grep -qF "src/core/engine.cpp:$lines: core may not include \"nfqtrace/output/format.hpp\"" <<<"$report" ||
  { echo "FAIL: the engine's include of the formats is not reported"; exit 1; }
grep -qF "src/wire/checksum.cpp:1: wire may not include <fmt/format.h>" <<<"$report" ||
  { echo "FAIL: the packet layer's include of fmt is not reported"; exit 1; }
[[ $(wc -l <<<"$report") == 2 ]] || { echo "FAIL: more than the two forbidden includes reported"; exit 1; }
echo "PASS: the layer check holds on the tree and catches forbidden includes"
