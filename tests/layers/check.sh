#!/usr/bin/env bash
# The layering rule, checked on the #include lines: each layer of src/ (see
# src/CMakeLists.txt) may include the headers of the layers below it, the
# C++ library, and only the third-party and system headers its job needs.
# The unit tests and the fuzz targets, which run without root, may include
# the pure layers only.
#
#   bash tests/layers/check.sh [ROOT]     (ROOT: the source tree, default ..)
#
# Prints one line per forbidden include, "file:line: ...", and exits 1 when
# there is any, else 0.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}

# What a part of the tree may include: nfqtrace layers, then the families of
# angle-bracket headers (std: the C++ library; libc: C and system headers;
# or a directory prefix such as fmt/).
declare -A layers=(
  [base]="base"
  [wire]="base wire"
  [core]="base wire core"
  [output]="base wire core output"
  [coop]="base wire core output coop"
  [sys]="base wire core sys"
  [runtime]="base wire core sys runtime"
  [tests/unit]="base wire core output coop"
  [fuzz]="base wire core output coop"
)
declare -A headers=(
  [base]="std"
  [wire]="std arpa/inet.h"  # inet_pton and inet_ntop: text, not I/O
  [core]="std"
  [output]="std fmt/ nlohmann/"
  [coop]="std fmt/ nlohmann/"
  [sys]="std libc fmt/ libmnl/ libnetfilter_queue/ libnetfilter_log/ linux/ sys/ net/ netinet/ arpa/"
  [runtime]="std"
  [tests/unit]="std gtest/ gmock/ arpa/inet.h"
  [fuzz]="std"
)

# The family of an angle-bracket include: std (<vector>), libc (<unistd.h>),
# or the header's own path (<fmt/format.h>).
family() {
  case $1 in
    */*) echo "$1" ;;
    *.h) echo libc ;;
    *) echo std ;;
  esac
}

allowed_header() {  # PART HEADER
  local part=$1 header=$2 fam want
  fam=$(family "$header")
  for want in ${headers[$part]}; do
    case $want in
      std|libc) [[ $fam == "$want" ]] && return 0 ;;
      */) [[ $header == "$want"* ]] && return 0 ;;
      *) [[ $header == "$want" ]] && return 0 ;;
    esac
  done
  return 1
}

include_line='^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]+)[>"]'
status=0
check_part() {  # PART DIR
  local part=$1 dir=$2 file line number include layer
  [[ -d $dir ]] || return 0
  while IFS= read -r -d '' file; do
    number=0
    while IFS= read -r line; do
      number=$((number + 1))
      [[ $line =~ $include_line ]] || continue
      include=${BASH_REMATCH[2]}
      if [[ ${BASH_REMATCH[1]} == '"' ]]; then
        [[ $include == nfqtrace/* ]] || continue  # a private header beside the file
        layer=${include#nfqtrace/}
        layer=${layer%%/*}
        if [[ " ${layers[$part]} " != *" $layer "* ]]; then
          echo "${file#"$root"/}:$number: $part may not include \"$include\" (it may use: ${layers[$part]})"
          status=1
        fi
      elif ! allowed_header "$part" "$include"; then
        echo "${file#"$root"/}:$number: $part may not include <$include> (it may use: ${headers[$part]})"
        status=1
      fi
    done <"$file"
  done < <(find "$dir" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.in' \) -print0 | sort -z)
}

for part in base wire core output coop sys runtime; do check_part "$part" "$root/src/$part"; done
check_part tests/unit "$root/tests/unit"
check_part fuzz "$root/fuzz"
exit $status
