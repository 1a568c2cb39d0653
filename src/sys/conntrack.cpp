#include "nfqtrace/sys/conntrack.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

// libmnl's attribute nesting and message macros are C.
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wsign-conversion"

namespace nfqtrace::sys {
namespace {

void put_tuple(nlmsghdr* nlh, const core::FlowKey& flow) {
  nlattr* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  if (flow.family() == wire::Family::v4) {
    mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, flow.src.bytes.data());
    mnl_attr_put(nlh, CTA_IP_V4_DST, 4, flow.dst.bytes.data());
  } else {
    mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, flow.src.bytes.data());
    mnl_attr_put(nlh, CTA_IP_V6_DST, 16, flow.dst.bytes.data());
  }
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(flow.sport));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(flow.dport));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

}  // namespace

Result<ConntrackMarker> ConntrackMarker::open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER));
  if (!fd.valid()) return Error::from_errno("open ctnetlink socket");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) < 0)
    return Error::from_errno("bind ctnetlink socket");
  return ConntrackMarker(std::move(fd));
}

Status ConntrackMarker::set_bits(const core::FlowKey& flow, std::uint32_t bits, bool on) {
  alignas(nlmsghdr) std::array<char, 512> buffer{};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;  // no NLM_F_CREATE: update only
  nlh->nlmsg_seq = ++sequence_;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = flow.family() == wire::Family::v4 ? AF_INET : AF_INET6;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  put_tuple(nlh, flow);
  // new mark = (old & ~mask) ^ value: sets or clears exactly `bits`.
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(on ? bits : 0));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(bits));

  for (;;) {
    if (send(fd_.get(), nlh, nlh->nlmsg_len, 0) >= 0) break;
    if (errno != EINTR) return Error::from_errno("ctnetlink send");
  }
  // The kernel handles the request inside send(): its answer is waiting.
  std::array<char, 1024> reply{};
  for (;;) {
    const ssize_t n = recv(fd_.get(), reply.data(), reply.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Ok{};  // no answer yet: nothing to report
      return Error::from_errno("ctnetlink receive");
    }
    const auto* answer = reinterpret_cast<const nlmsghdr*>(reply.data());
    if (!NLMSG_OK(answer, static_cast<unsigned>(n))) return Error{"ctnetlink: short answer", EPROTO};
    if (answer->nlmsg_seq != sequence_) continue;  // an answer to an earlier request
    if (answer->nlmsg_type == NLMSG_ERROR) {
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(answer));
      if (err->error == 0) return Ok{};
      return Error::from_errno("set conntrack mark", -err->error);
    }
    return Ok{};
  }
}

}  // namespace nfqtrace::sys
