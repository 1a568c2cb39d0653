#include "nfqtrace/sys/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace nfqtrace::sys {
namespace {

using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)>;

Status keep_only_net_admin() {
  CapPtr caps(cap_init(), &cap_free);
  if (!caps) return Error::from_errno("cap_init");
  const cap_value_t keep[] = {CAP_NET_ADMIN};
  if (cap_set_flag(caps.get(), CAP_PERMITTED, 1, keep, CAP_SET) != 0 ||
      cap_set_flag(caps.get(), CAP_EFFECTIVE, 1, keep, CAP_SET) != 0)
    return Error::from_errno("cap_set_flag");
  if (cap_set_proc(caps.get()) != 0) return Error::from_errno("drop capabilities");
  return Ok{};
}

}  // namespace

Status drop_privileges(const std::string& user) {
  // The bounding set first, while CAP_SETPCAP is still effective.
  for (cap_value_t c = 0; c <= CAP_LAST_CAP; ++c) {
    if (c == CAP_NET_ADMIN) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
      return Error::from_errno("drop capability bounding set");
  }
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

  if (geteuid() == 0) {
    errno = 0;
    const passwd* pw = getpwnam(user.c_str());
    if (!pw) return Error{"--user: no such user '" + user + "'", errno};
    // Capabilities survive the change of user only when asked to.
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Error::from_errno("PR_SET_KEEPCAPS");
    if (setgroups(0, nullptr) != 0) return Error::from_errno("setgroups");
    if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0) return Error::from_errno("setresgid");
    if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) return Error::from_errno("setresuid");
  }
  if (auto s = keep_only_net_admin(); !s) return s;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Error::from_errno("PR_SET_NO_NEW_PRIVS");
  return Ok{};
}

Status pass_capabilities_to_children() {
  if (geteuid() == 0) return Ok{};
  CapPtr caps(cap_get_proc(), &cap_free);
  if (!caps) return Error::from_errno("cap_get_proc");
  const cap_value_t pass[] = {CAP_NET_ADMIN, CAP_NET_RAW};
  for (cap_value_t c : pass) {
    cap_flag_value_t permitted = CAP_CLEAR;
    cap_get_flag(caps.get(), c, CAP_PERMITTED, &permitted);
    if (permitted != CAP_SET) return Error{"not enough privileges: run as root, or give the program "
                                           "CAP_NET_ADMIN and CAP_NET_RAW (setcap)", EPERM};
  }
  // Ambient capabilities must be inheritable first.
  if (cap_set_flag(caps.get(), CAP_INHERITABLE, 2, pass, CAP_SET) != 0 || cap_set_proc(caps.get()) != 0)
    return Error::from_errno("make capabilities inheritable");
  for (cap_value_t c : pass) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
      return Error::from_errno("raise ambient capability");
  }
  return Ok{};
}

}  // namespace nfqtrace::sys
