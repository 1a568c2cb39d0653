#!/usr/bin/env bash
# IPv6 forward trace from the client (--dport, dup mode) of a live upload
# across four routers: the trace equals traceroute -T hop by hop and reaches
# the server; the upload arrives intact; nfqtrace exits 0 and leaves no rule.
# Usage: bash test_ipv6_forward.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init ipv6_forward
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"
forward_upload_test 6 4 "$NFQ"   # IPv6, four routers (lib.sh)
net_finish
