// Least privilege: once set up, the tracing process runs as an unprivileged
// user with CAP_NET_ADMIN alone. That one stays because the kernel checks it
// on every message to the queue (verdicts) and to conntrack (marks); raw
// sockets, already open, need nothing more to send or receive.
#pragma once

#include <string>

#include "nfqtrace/sys/error.hpp"

namespace nfqtrace::sys {

// Becomes `user` (when running as root; otherwise stays the invoking user),
// with no capability but CAP_NET_ADMIN, none in the bounding set either, and
// no way to regain any (no_new_privs).
Status drop_privileges(const std::string& user);

}  // namespace nfqtrace::sys

namespace nfqtrace::sys {

// Started by a user other than root with file capabilities (setcap), the
// programs we run (iptables, nft) would lose them: this passes CAP_NET_ADMIN
// and CAP_NET_RAW on as ambient capabilities. Nothing to do for root.
Status pass_capabilities_to_children();

}  // namespace nfqtrace::sys
