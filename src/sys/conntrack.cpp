#include "nfqtrace/sys/conntrack.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <poll.h>
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

// The flow of a conntrack entry's original tuple, if it is TCP.
std::optional<core::FlowKey> tcp_flow_of(const nlmsghdr* message) {
  std::array<const nlattr*, CTA_MAX + 1> ct{};
  auto collect = [](const nlattr* attr, void* data) -> int {
    auto& table = *static_cast<std::array<const nlattr*, CTA_MAX + 1>*>(data);
    const int type = mnl_attr_get_type(attr);
    if (type >= 0 && type < static_cast<int>(table.size())) table[static_cast<std::size_t>(type)] = attr;
    return MNL_CB_OK;
  };
  if (mnl_attr_parse(message, sizeof(nfgenmsg), collect, &ct) < 0 || !ct[CTA_TUPLE_ORIG])
    return std::nullopt;
  std::array<const nlattr*, CTA_MAX + 1> tuple{}, ip{}, proto{};
  if (mnl_attr_parse_nested(ct[CTA_TUPLE_ORIG], collect, &tuple) < 0 || !tuple[CTA_TUPLE_IP] ||
      !tuple[CTA_TUPLE_PROTO] || mnl_attr_parse_nested(tuple[CTA_TUPLE_IP], collect, &ip) < 0 ||
      mnl_attr_parse_nested(tuple[CTA_TUPLE_PROTO], collect, &proto) < 0)
    return std::nullopt;
  if (!proto[CTA_PROTO_NUM] || mnl_attr_get_u8(proto[CTA_PROTO_NUM]) != IPPROTO_TCP ||
      !proto[CTA_PROTO_SRC_PORT] || !proto[CTA_PROTO_DST_PORT])
    return std::nullopt;
  core::FlowKey flow;
  auto address = [](const nlattr* attr, wire::Family family, std::size_t size) {
    wire::Address a;
    a.family = family;
    if (attr && mnl_attr_get_payload_len(attr) == size)
      std::memcpy(a.bytes.data(), mnl_attr_get_payload(attr), size);
    return a;
  };
  if (ip[CTA_IP_V4_SRC]) {
    flow.src = address(ip[CTA_IP_V4_SRC], wire::Family::v4, 4);
    flow.dst = address(ip[CTA_IP_V4_DST], wire::Family::v4, 4);
  } else if (ip[CTA_IP_V6_SRC]) {
    flow.src = address(ip[CTA_IP_V6_SRC], wire::Family::v6, 16);
    flow.dst = address(ip[CTA_IP_V6_DST], wire::Family::v6, 16);
  } else {
    return std::nullopt;
  }
  flow.sport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_SRC_PORT]));
  flow.dport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_DST_PORT]));
  return flow;
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
  return set_mark(flow, on ? bits : 0, bits);
}

Status ConntrackMarker::set_mark(const core::FlowKey& flow, std::uint32_t value,
                                 std::uint32_t mask) {
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
  // new mark = (old & ~mask) ^ value: the bits of `mask` become `value`'s.
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(value & mask));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));

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

Result<std::vector<core::FlowKey>> ConntrackMarker::marked_connections(std::uint32_t bits) {
  alignas(nlmsghdr) std::array<char, 256> buffer{};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = ++sequence_;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;  // both families
  nfg->version = NFNETLINK_V0;
  // The kernel filters: only entries with (mark & bits) == bits.
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(bits));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(bits));
  if (send(fd_.get(), nlh, nlh->nlmsg_len, 0) < 0) return Error::from_errno("ctnetlink dump");

  std::vector<core::FlowKey> flows;
  std::vector<char> reply(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int ready = poll(&p, 1, 2000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return Error{"ctnetlink dump: no answer", ETIMEDOUT};
    const ssize_t n = recv(fd_.get(), reply.data(), reply.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::from_errno("ctnetlink dump");
    }
    int remaining = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(reply.data()); mnl_nlmsg_ok(m, remaining);
         m = mnl_nlmsg_next(m, &remaining)) {
      if (m->nlmsg_seq != sequence_) continue;  // an earlier request's answer
      if (m->nlmsg_type == NLMSG_DONE) return flows;
      if (m->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (err->error == 0) return flows;
        return Error::from_errno("ctnetlink dump", -err->error);
      }
      if (auto flow = tcp_flow_of(m)) flows.push_back(*flow);
    }
  }
}

Result<std::size_t> ConntrackMarker::clear_everywhere(std::uint32_t bits, std::uint32_t also) {
  auto flows = marked_connections(bits);
  if (!flows) return flows.error();
  std::size_t cleared = 0;
  for (const core::FlowKey& flow : *flows) {
    // ENOENT: it went meanwhile, with its mark.
    if (set_bits(flow, bits | also, false)) ++cleared;
  }
  return cleared;
}

}  // namespace nfqtrace::sys
