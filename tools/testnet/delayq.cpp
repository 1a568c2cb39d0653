// delayq — a fixed-delay line for the namespace test networks.
//
// The kernel here has no netem, so a router that must look like it sits
// behind a slow link puts its forwarded packets into an NFQUEUE
// (`iptables -t mangle -A FORWARD -j NFQUEUE --queue-num Q`) and this
// program accepts each of them DELAY milliseconds after it arrived. Every
// packet gets the same delay, so arrival order is kept.
//
// Usage: delayq QUEUE_NUM DELAY_MS
// Prints one "ready" line on stdout once the queue is bound (the test
// library waits for it before installing the NFQUEUE rule) and a summary on
// stderr when it ends (SIGTERM or SIGINT).
//
// Built by CMake (tools/testnet/CMakeLists.txt) into <build>/helpers.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Nanos = std::int64_t;

Nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "delayq: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool parse_uint(std::string_view text, unsigned& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

struct Held {
  std::uint32_t id;
  Nanos release_at;
};

struct DelayLine {
  mnl_socket* nl = nullptr;
  unsigned portid = 0;
  unsigned queue = 0;
  Nanos delay = 0;
  std::deque<Held> held;
  std::uint64_t seen = 0, released = 0, recv_overruns = 0, netlink_errors = 0;
  // MNL_SOCKET_BUFFER_SIZE is a long (from sysconf).
  std::vector<char> buf = std::vector<char>(static_cast<std::size_t>(MNL_SOCKET_BUFFER_SIZE));

  void send(nlmsghdr* nlh, const char* what) {
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die(what);
  }

  void configure() {
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);  // family is ignored by the kernel
    send(nlh, "bind queue");

    nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);  // only the id is needed
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 100000);              // a long link holds many packets
    // GSO super-packets stay whole: fewer entries, same order.
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
    send(nlh, "configure queue");
  }

  static int on_packet(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<DelayLine*>(data);
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) return MNL_CB_OK;
    const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
    self->held.push_back({ntohl(ph->packet_id), now_ns() + self->delay});
    ++self->seen;
    return MNL_CB_OK;
  }

  // Reads every message that is waiting, without blocking.
  void receive() {
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(nl), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ENOBUFS) {  // the kernel could not hand us some packets
          ++recv_overruns;
          continue;
        }
        die("recv");
      }
      errno = 0;
      if (mnl_cb_run(buf.data(), static_cast<size_t>(n), 0, portid, on_packet, this) < 0) {
        // An error the kernel reported (say, for a verdict): say it, go on.
        if (++netlink_errors <= 5) std::fprintf(stderr, "delayq: netlink error: %s\n", std::strerror(errno));
      }
    }
  }

  // Accepts every packet whose time has come. Ids grow in arrival order, so
  // one batch verdict for the newest due id accepts exactly the due ones.
  void release_due(Nanos now) {
    std::uint32_t last = 0;
    bool any = false;
    while (!held.empty() && held.front().release_at <= now) {
      last = held.front().id;
      held.pop_front();
      ++released;
      any = true;
    }
    if (!any) return;
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_VERDICT_BATCH, queue);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(last), NF_ACCEPT);
    send(nlh, "verdict");
  }

  void run() {
    pollfd pfd{mnl_socket_get_fd(nl), POLLIN, 0};
    while (!g_stop) {
      timespec wait{};
      timespec* timeout = nullptr;  // nothing held: sleep until a packet comes
      if (!held.empty()) {
        Nanos left = held.front().release_at - now_ns();
        if (left < 0) left = 0;
        wait.tv_sec = static_cast<time_t>(left / 1'000'000'000);
        wait.tv_nsec = static_cast<long>(left % 1'000'000'000);
        timeout = &wait;
      }
      int ready = ppoll(&pfd, 1, timeout, nullptr);
      if (ready < 0 && errno != EINTR) die("ppoll");
      if (ready > 0) receive();
      release_due(now_ns());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  unsigned queue = 0, delay_ms = 0;
  if (argc != 3 || !parse_uint(argv[1], queue) || !parse_uint(argv[2], delay_ms) || queue > 65535) {
    std::fprintf(stderr, "usage: delayq QUEUE_NUM DELAY_MS\n");
    return 2;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: ppoll returns EINTR and the loop ends
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  DelayLine line;
  line.queue = queue;
  line.delay = Nanos{delay_ms} * 1'000'000;
  line.nl = mnl_socket_open(NETLINK_NETFILTER);
  if (line.nl == nullptr) die("mnl_socket_open");
  if (mnl_socket_bind(line.nl, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
  line.portid = mnl_socket_get_portid(line.nl);

  // A big receive buffer, so bursts wait in the socket rather than being lost.
  int rcvbuf = 8 << 20;
  if (setsockopt(mnl_socket_get_fd(line.nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(mnl_socket_get_fd(line.nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  line.configure();
  std::printf("delayq: queue %u delay %u ms ready\n", queue, delay_ms);
  std::fflush(stdout);

  line.run();
  std::fprintf(stderr, "delayq: queued %llu, released %llu, still held %zu, receive overruns %llu, netlink errors %llu\n",
               static_cast<unsigned long long>(line.seen), static_cast<unsigned long long>(line.released),
               line.held.size(), static_cast<unsigned long long>(line.recv_overruns),
               static_cast<unsigned long long>(line.netlink_errors));
  mnl_socket_close(line.nl);
  return 0;
}
