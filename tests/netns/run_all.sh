#!/usr/bin/env bash
# Runs every namespace test against one nfqtrace binary, one after another,
# and ends with a summary line. Exit 0 when none failed (skips are not
# failures). Logs of failed tests are printed in full.
# Usage: sudo bash tests/netns/run_all.sh /path/to/nfqtrace [test name filter]
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
NFQ=${1:?usage: run_all.sh /path/to/nfqtrace [filter]}
FILTER=${2:-}
passed=0 failed=0 skipped=0 failed_names=()
LOGDIR=$(mktemp -d /tmp/nfqt-run_all.XXXXXX)
for script in "$DIR"/test_*.sh; do
  name=$(basename "$script" .sh)
  [[ -n $FILTER && $name != *$FILTER* ]] && continue
  start=$(date +%s)
  bash "$script" "$NFQ" >"$LOGDIR/$name.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  case $rc in
    0) passed=$((passed + 1)); printf 'ok     %-26s %3d s\n' "$name" "$secs" ;;
    77) skipped=$((skipped + 1)); printf 'skip   %-26s %3d s  %s\n' "$name" "$secs" "$(head -n1 "$LOGDIR/$name.log")" ;;
    *) failed=$((failed + 1)); failed_names+=("$name")
       printf 'FAIL   %-26s %3d s  (exit %d)\n' "$name" "$secs" "$rc"
       grep -E '^FAIL' "$LOGDIR/$name.log" | sed 's/^/         /' ;;
  esac
done
for name in "${failed_names[@]}"; do
  printf '\n######## %s ########\n' "$name"; cat "$LOGDIR/$name.log"
done
rm -rf "$LOGDIR"
echo
echo "netns: $passed passed, $failed failed, $skipped skipped"
(( failed == 0 ))
