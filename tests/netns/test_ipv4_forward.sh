#!/usr/bin/env bash
# IPv4 forward trace from the client (--dport, dup mode) of a live upload
# across three routers: the trace equals traceroute -T hop by hop and reaches
# the server; the upload arrives intact; nfqtrace exits 0 and leaves no rule.
# Usage: bash test_ipv4_forward.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init ipv4_forward
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
forward_upload_test 4 3 "$NFQ"   # IPv4, three routers (lib.sh)
net_finish
