#!/usr/bin/env bash
# Every option a program's --help lists is in its man page: the man pages
# are written by hand (packaging/man/, scdoc), this keeps them true.
#   bash tests/package/man_options.sh PROGRAM MAN_PAGE
set -euo pipefail
program=$1 page=$2
[[ -f $page ]] || { echo "SKIP: $page not built (scdoc missing? scripts/setup installs it)"; exit 77; }
# The page as a reader sees it, plain ASCII (no hyphen glyphs, no wrapping).
text=$(LC_ALL=C MANWIDTH=200 man --no-hyphenation --no-justification -l "$page" 2>/dev/null | col -b)
options=$("$program" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
[[ -n $options ]] || { echo "FAIL: $program --help lists no option"; exit 1; }
missing=()
for option in $options; do
  grep -qE -- "(^|[^a-z0-9-])${option}([^a-z0-9-]|$)" <<<"$text" || missing+=("$option")
done
if ((${#missing[@]})); then
  echo "FAIL: $(basename "$page") lacks ${missing[*]}, which $(basename "$program") --help lists"
  exit 1
fi
echo "PASS: $(basename "$page") has all $(wc -w <<<"$options") options of $(basename "$program") --help"
