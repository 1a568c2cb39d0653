// The packet-filter rules, checked the way users meet them: what
// iptables-save shows, that nothing stays behind, and that a live TCP
// connection keeps working with nobody reading the queue. netns_main.cpp has
// put this process in a network namespace of its own, so the rules installed
// here never reach the machine's real tables.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nfqtrace/sys/rules.hpp"
#include "test_support.hpp"
// Internal: the nft script, checked by nft itself even where the kernel lacks
// the queue expression and the nft back end cannot be installed.
#include "rules_nft.hpp"  // private to src/sys: nfqtrace_sys_internals

namespace nfqtrace::sys {
namespace {

// The test's own checks run shell commands (the code under test never uses
// a shell); capture() returns the command's stdout.
using testing::capture;
using testing::ScopedEnv;

bool succeeds(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> found;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) found.push_back(line);
    start = end + 1;
  }
  return found;
}

// Our lines in `iptables-save -t mangle` (tool "iptables") or ip6tables-save.
std::set<std::string> saved_rules(const std::string& tool = "iptables", const std::string& needle = "NFQTRACE") {
  const auto found = lines_with(capture(tool + "-save -t mangle 2>/dev/null"), needle);
  return {found.begin(), found.end()};
}

std::size_t nfqtrace_lines(const std::string& tool = "iptables") { return saved_rules(tool).size(); }

wire::Address address(const char* text) { return *wire::Address::parse(text); }

bool one_line(const std::string& message) {
  return !message.empty() && message.find('\n') == std::string::npos;
}

// A cooperating server on port 7400 whose clients may ask for mangle mode:
// their packets copied, but a connection's in mangle mode queued by its mark.
RuleSpec clients_choose_their_mode(RuleSpec s) {
  s.sports = {7400};
  s.copy_outgoing = true;
  s.queue_by_mark = true;
  s.log_all_peer_acks = true;
  s.bypass_mark = 0x4e510000;
  s.watch_mark = 0x8000;
  s.round_mark = 0x4000;
  return s;
}

class RulesXtables : public testing::XtablesRulesTest {
 protected:
  RuleSpec spec(std::uint16_t queue_id) {
    RuleSpec s;
    s.queue_id = use_queue(queue_id);
    s.nflog_group = queue_id;
    return s;
  }
};

TEST_F(RulesXtables, InstallShowsTheSelection) {
  RuleSpec s = spec(7);
  s.dports = {443, 80, 443};  // the duplicate gives no second rule
  s.sports = {8080};
  s.host = address("127.0.0.1");
  s.out_interface = "lo";
  s.nflog_group = 3;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  EXPECT_EQ(rules->backend(), RulesBackend::xtables);

  const std::string out_head = "-A NFQTRACE-Q7-OUT -d 127.0.0.1/32 -o lo -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp ";
  // Only connections of this host (not those it forwards).
  const std::string queue = " -m addrtype --src-type LOCAL -j NFQUEUE --queue-num 7 --queue-bypass";
  const std::string log = " -j NFLOG --nflog-group 3 --nflog-size 128 --nflog-threshold 1";
  const std::string in_head = "-A NFQTRACE-Q7-IN -s 127.0.0.1/32 -p tcp -m tcp ";
  const std::set<std::string> expected{
      ":NFQTRACE-Q7-IN - [0:0]",
      ":NFQTRACE-Q7-OUT - [0:0]",
      "-A POSTROUTING -p tcp -j NFQTRACE-Q7-OUT",
      "-A INPUT -p tcp -j NFQTRACE-Q7-IN",
      out_head + "--dport 80" + queue,
      out_head + "--dport 443" + queue,
      out_head + "--sport 8080" + queue,
      // The peer's side of the same connections: FIN or RST, else SACK.
      in_head + "--sport 80 ! --tcp-flags FIN,RST NONE" + log,
      in_head + "--sport 80 --tcp-option 5 --tcp-flags FIN,RST NONE" + log,
      in_head + "--sport 443 ! --tcp-flags FIN,RST NONE" + log,
      in_head + "--sport 443 --tcp-option 5 --tcp-flags FIN,RST NONE" + log,
      in_head + "--dport 8080 ! --tcp-flags FIN,RST NONE" + log,
      in_head + "--dport 8080 --tcp-option 5 --tcp-flags FIN,RST NONE" + log,
  };
  EXPECT_EQ(saved_rules(), expected);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u) << "an IPv4 host needs no IPv6 rules";
}

TEST_F(RulesXtables, LocalPortSelectsOneConnection) {
  RuleSpec s = spec(8);
  s.dports = {9000};
  s.local_port = 41000;
  s.host = address("127.0.0.1");
  s.queue_icmp = true;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  const std::string log = " -j NFLOG --nflog-group 8 --nflog-size 128 --nflog-threshold 1";
  const std::string in_head = "-A NFQTRACE-Q8-IN -s 127.0.0.1/32 -p tcp -m tcp --sport 9000 --dport 41000";
  const auto saved = saved_rules();
  EXPECT_TRUE(saved.count(
      "-A NFQTRACE-Q8-OUT -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp "
      "--sport 41000 --dport 9000 -m addrtype --src-type LOCAL -j NFQUEUE --queue-num 8 --queue-bypass"));
  EXPECT_TRUE(saved.count(in_head + " ! --tcp-flags FIN,RST NONE" + log));
  EXPECT_TRUE(saved.count(in_head + " --tcp-option 5 --tcp-flags FIN,RST NONE" + log));
  // ICMP errors quoting this connection's both ports (41000, 9000) only: the
  // clients of one server each trace their own.
  EXPECT_TRUE(saved.count("-A NFQTRACE-Q8-IN -p icmp -m icmp --icmp-type 11 -m u32 --u32 "
                          "\"0x0>>0x16&0x3c@0x8>>0x16&0x3c@0x8=0xa0282328\" -j NFQUEUE "
                          "--queue-num 8 --queue-bypass"));

  RuleSpec server_side = spec(9);
  server_side.sports = {9000};
  server_side.local_port = 41000;
  EXPECT_FALSE(Rules::install(server_side)) << "a local port goes with destination ports only";
}

TEST_F(RulesXtables, WithoutHostBothFamiliesAndAllAcksWhenAsked) {
  RuleSpec s = spec(8);
  s.dports = {22};
  s.log_all_peer_acks = true;
  s.probe_mark = 0x100;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  for (const std::string tool : {"iptables", "ip6tables"}) {
    const std::set<std::string> expected{
        ":NFQTRACE-Q8-IN - [0:0]",
        ":NFQTRACE-Q8-OUT - [0:0]",
        "-A POSTROUTING -p tcp -j NFQTRACE-Q8-OUT",
        "-A INPUT -p tcp -j NFQTRACE-Q8-IN",
        "-A NFQTRACE-Q8-OUT -p tcp -m mark ! --mark 0x100/0x100 -m tcp --dport 22 -m addrtype "
        "--src-type LOCAL -j NFQUEUE --queue-num 8 --queue-bypass",
        "-A NFQTRACE-Q8-IN -p tcp -m tcp --sport 22 -j NFLOG --nflog-group 8 --nflog-size 128 "
        "--nflog-threshold 1",
    };
    EXPECT_EQ(saved_rules(tool), expected) << tool;
  }
}

TEST_F(RulesXtables, IcmpErrorsQuotingOurPortsGoThroughTheQueueWhenAskedButNotPacketTooBig) {
  RuleSpec s = spec(8);
  s.dports = {22};
  s.sports = {8080};
  s.queue_icmp = true;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  const std::string queue = " -j NFQUEUE --queue-num 8 --queue-bypass";
  // The quoted TCP header's destination port (22 = 0x16) or source port
  // (8080 = 0x1f90), past both IP headers.
  const std::string v4_dport = " -m u32 --u32 \"0x0>>0x16&0x3c@0x8>>0x16&0x3c@0x8&0xffff=0x16\"";
  const std::string v4_sport = " -m u32 --u32 \"0x0>>0x16&0x3c@0x8>>0x16&0x3c@0x8>>0x10=0x1f90\"";
  const auto v4 = saved_rules("iptables");
  EXPECT_TRUE(v4.count("-A INPUT -p icmp -j NFQTRACE-Q8-IN"));
  for (const std::string type : {"11", "3"}) {
    EXPECT_TRUE(v4.count("-A NFQTRACE-Q8-IN -p icmp -m icmp --icmp-type " + type + v4_dport + queue)) << type;
    EXPECT_TRUE(v4.count("-A NFQTRACE-Q8-IN -p icmp -m icmp --icmp-type " + type + v4_sport + queue)) << type;
  }
  const auto v6 = saved_rules("ip6tables");
  EXPECT_TRUE(v6.count("-A INPUT -p ipv6-icmp -j NFQTRACE-Q8-IN"));
  for (const std::string type : {"3", "1"}) {
    EXPECT_TRUE(v6.count("-A NFQTRACE-Q8-IN -p ipv6-icmp -m icmp6 --icmpv6-type " + type +
                         " -m u32 --u32 \"0x58&0xffff=0x16\"" + queue))
        << type;
    EXPECT_TRUE(v6.count("-A NFQTRACE-Q8-IN -p ipv6-icmp -m icmp6 --icmpv6-type " + type +
                         " -m u32 --u32 \"0x58>>0x10=0x1f90\"" + queue))
        << type;
  }
  for (const std::string& rule : v6) EXPECT_EQ(rule.find("--icmpv6-type 2"), std::string::npos);
  ASSERT_TRUE(rules->remove());
  EXPECT_EQ(nfqtrace_lines(), 0u);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
}

TEST_F(RulesXtables, AWatchedConnectionsPacketsAreCopiedThenSkipTheQueue) {
  RuleSpec s = spec(8);
  s.dports = {22};
  s.bypass_mark = 0x4e510000;
  s.watch_mark = 0x8000;
  s.round_mark = 0x4000;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  for (const std::string tool : {"iptables", "ip6tables"}) {
    const auto saved = saved_rules(tool);
    // The peer's packets of a round waiting for answers (mark and round
    // bit) are not bypassed: the D-SACKs must reach us.
    EXPECT_TRUE(saved.count("-A NFQTRACE-Q8-IN -p tcp -m connmark --mark 0x4e510000/0x4e514000 -m tcp "
                            "--tcp-flags FIN,SYN,RST NONE -j RETURN"))
        << tool;
    const std::string copy =
        "-A NFQTRACE-Q8-OUT -p tcp -m connmark --mark 0x4e518000/0x4e51c000 -m tcp --tcp-flags "
        "FIN,SYN,RST NONE -j NFLOG --nflog-group 8 --nflog-size 128 --nflog-threshold 1";
    const std::string skip =
        "-A NFQTRACE-Q8-OUT -p tcp -m connmark --mark 0x4e510000/0x4e510000 -m tcp --tcp-flags "
        "FIN,SYN,RST NONE -j RETURN";
    EXPECT_TRUE(saved.count(copy)) << tool;
    EXPECT_TRUE(saved.count(skip)) << tool;
    // The copy comes first: the skip ends the chain.
    const std::string listing = capture(tool + "-save -t mangle");
    EXPECT_LT(listing.find(copy), listing.find(skip)) << listing;
  }
  ASSERT_TRUE(rules->remove());
}

TEST_F(RulesXtables, AGatewayAlsoSeesWhatItForwards) {
  RuleSpec s = spec(8);
  s.dports = {443};
  s.queue_icmp = true;
  {
    auto rules = Rules::install(s);
    ASSERT_TRUE(rules) << rules.error().message();
    EXPECT_TRUE(saved_rules("iptables", "-A FORWARD").empty()) << "only with --forward";
    EXPECT_EQ(saved_rules("iptables", "--src-type LOCAL").size(), 1u) << "only its own connections";
  }
  s.forward = true;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  // The peer's packets and the routers' answers, on their way to the inner
  // host, pass the same chain as those addressed to us.
  EXPECT_EQ(saved_rules("iptables", "-A FORWARD"),
            (std::set<std::string>{"-A FORWARD -p icmp -j NFQTRACE-Q8-IN",
                                   "-A FORWARD -p tcp -j NFQTRACE-Q8-IN"}));
  EXPECT_EQ(saved_rules("ip6tables", "-A FORWARD"),
            (std::set<std::string>{"-A FORWARD -p ipv6-icmp -j NFQTRACE-Q8-IN",
                                   "-A FORWARD -p tcp -j NFQTRACE-Q8-IN"}));
  EXPECT_TRUE(saved_rules("iptables").count("-A INPUT -p tcp -j NFQTRACE-Q8-IN"));
  // Its own connections and those it forwards leave through the same queue rule.
  EXPECT_TRUE(saved_rules("iptables").count(
      "-A NFQTRACE-Q8-OUT -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp --dport 443 -j "
      "NFQUEUE --queue-num 8 --queue-bypass"));
  ASSERT_TRUE(rules->remove());
  EXPECT_EQ(nfqtrace_lines(), 0u);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
}

// Dup mode: the connection's packets are copied to the log, never queued
// (nothing of it waits for us); the routers' answers still are queued.
TEST_F(RulesXtables, InDupModeTheConnectionsPacketsAreCopiedNotQueued) {
  RuleSpec s = spec(8);
  s.dports = {443};
  s.nflog_group = 8;
  s.queue_icmp = true;
  s.forward = true;
  s.copy_outgoing = true;
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  for (const std::string tool : {"iptables", "ip6tables"}) {
    EXPECT_EQ(saved_rules(tool, "-A NFQTRACE-Q8-OUT"),
              (std::set<std::string>{
                  "-A NFQTRACE-Q8-OUT -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp --dport "
                  "443 -j NFLOG --nflog-prefix nfqtrace-out --nflog-group 8 --nflog-size 1280 "
                  "--nflog-threshold 1"}))
        << tool;
    // Time-exceeded and destination-unreachable quoting our port.
    EXPECT_EQ(saved_rules(tool, "NFQUEUE").size(), 2u) << tool << ": the ICMP errors only";
    EXPECT_TRUE(saved_rules(tool, "-p tcp -j NFQUEUE").empty()) << tool;
  }
  ASSERT_TRUE(rules->remove());
  EXPECT_EQ(nfqtrace_lines(), 0u);

  // With the marks: a round's next packet is copied alone, then the watch
  // bit cleared leaves the connection waiting past us; before the bypass.
  s.bypass_mark = 0x4e510000;
  s.watch_mark = 0x8000;
  s.round_mark = 0x4000;
  rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  // Only the selected connections: another instance's marks stay its own.
  const std::string match =
      "-A NFQTRACE-Q8-OUT -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m connmark --mark "
      "0x4e51c000/0x4e51c000 -m tcp --dport 443 --tcp-flags FIN,SYN,RST NONE";
  const std::string copy = match + " -j NFLOG --nflog-prefix nfqtrace-out --nflog-group 8 "
                                   "--nflog-size 1280 --nflog-threshold 1";
  const std::string flip = match + " -j CONNMARK --set-xmark 0x4e514000/0x4e51c000";
  const std::string listing = capture("iptables-save -t mangle");
  ASSERT_NE(listing.find(copy), std::string::npos) << listing;
  EXPECT_LT(listing.find(copy), listing.find(flip)) << listing;
  EXPECT_LT(listing.find(flip), listing.find("--mark 0x4e510000/0x4e510000 -m tcp --tcp-flags "
                                             "FIN,SYN,RST NONE -j RETURN"))
      << listing;
  ASSERT_TRUE(rules->remove());
}

// A cooperating server whose clients may ask for mangle mode: the packets
// of a connection whose mark says so (the two bits below --mark's, without
// them) are queued, the others copied; only that connection's peer has every
// ACK logged, the others' only what dup mode reads.
TEST_F(RulesXtables, AConnectionMarkedForTheQueueIsQueuedTheOthersCopied) {
  RuleSpec s = clients_choose_their_mode(spec(8));
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  for (const std::string tool : {"iptables", "ip6tables"}) {
    const std::string listing = capture(tool + "-save -t mangle");
    const std::string outgoing =
        "-A NFQTRACE-Q8-OUT -p tcp -m mark ! --mark 0x4e510000/0x4e510000 ";
    const std::string queued = outgoing +
                               "-m connmark --mark 0xc000/0x4e51c000 -m tcp --sport 7400 -m addrtype "
                               "--src-type LOCAL -j NFQUEUE --queue-num 8 --queue-bypass";
    const std::string copied = outgoing +
                               "-m tcp --sport 7400 -m addrtype --src-type LOCAL -j NFLOG "
                               "--nflog-prefix nfqtrace-out";
    ASSERT_NE(listing.find(queued), std::string::npos) << tool << "\n" << listing;
    ASSERT_NE(listing.find(copied), std::string::npos) << tool << "\n" << listing;
    EXPECT_LT(listing.find(queued), listing.find(copied)) << tool << ": the queue first, it ends the chain";
    EXPECT_EQ(lines_with(listing, "NFQUEUE --queue-num 8").size(), 1u) << tool << ": no ICMP asked for";

    const std::string peer = "-A NFQTRACE-Q8-IN -p tcp -m connmark ";
    EXPECT_NE(listing.find(peer + "--mark 0xc000/0x4e51c000 -m tcp --dport 7400 -j NFLOG"),
              std::string::npos)
        << tool << ": every ACK of a connection in mangle mode\n" << listing;
    EXPECT_NE(listing.find(peer + "! --mark 0xc000/0x4e51c000 -m tcp --dport 7400 "
                                  "--tcp-option 5 --tcp-flags FIN,RST NONE -j NFLOG"),
              std::string::npos)
        << tool << ": the others' SACKs only\n" << listing;
    EXPECT_EQ(lines_with(listing, "-A NFQTRACE-Q8-IN -p tcp -m tcp --dport 7400 -j NFLOG").size(), 0u)
        << tool << ": no rule logs every ACK of every connection";
  }
  ASSERT_TRUE(rules->remove());
  EXPECT_EQ(nfqtrace_lines(), 0u);

  // Without both bits the queued mark would be every unmarked connection's.
  s.round_mark = 0;
  auto refused = Rules::install(s);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(one_line(refused.error().message())) << refused.error().message();
  EXPECT_EQ(nfqtrace_lines(), 0u);
}

TEST_F(RulesXtables, RemoveLeavesNoTraceAndIsIdempotent) {
  RuleSpec s = spec(9);
  s.dports = {80};
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  ASSERT_GT(nfqtrace_lines(), 0u);
  ASSERT_GT(nfqtrace_lines("ip6tables"), 0u);
  auto removed = rules->remove();
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(nfqtrace_lines(), 0u);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
  auto again = rules->remove();
  EXPECT_TRUE(again) << again.error().message();
  EXPECT_TRUE(Rules::remove_leftovers(9)) << "nothing left is fine";
}

TEST_F(RulesXtables, DestructorRemovesAndMoveKeepsOneOwner) {
  RuleSpec s = spec(10);
  s.sports = {5000};
  {
    auto rules = Rules::install(s);
    ASSERT_TRUE(rules) << rules.error().message();
    Rules moved = std::move(rules.value());
    EXPECT_GT(nfqtrace_lines(), 0u) << "the moved-from object removed nothing";
  }
  EXPECT_EQ(nfqtrace_lines(), 0u);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
}

TEST_F(RulesXtables, InstallReplacesLeftoversOfAKilledRun) {
  RuleSpec s = spec(11);
  s.dports = {80};
  // A killed run: our chains with stale rules, the jump twice, an IN chain
  // nobody jumps to, and the IPv6 half of a run without host.
  ASSERT_TRUE(succeeds("iptables -t mangle -N NFQTRACE-Q11-OUT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -A NFQTRACE-Q11-OUT -p udp -j ACCEPT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -A POSTROUTING -j NFQTRACE-Q11-OUT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -A POSTROUTING -j NFQTRACE-Q11-OUT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -N NFQTRACE-Q11-IN"));
  ASSERT_TRUE(succeeds("ip6tables -t mangle -N NFQTRACE-Q11-OUT"));
  ASSERT_TRUE(succeeds("ip6tables -t mangle -A POSTROUTING -j NFQTRACE-Q11-OUT"));
  s.host = address("127.0.0.1");

  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  const auto saved = saved_rules();
  EXPECT_EQ(lines_with(capture("iptables-save -t mangle"), "-A POSTROUTING").size(), 1u)
      << "exactly one jump, not three";
  EXPECT_TRUE(lines_with(capture("iptables-save -t mangle"), "udp").empty()) << "stale rule kept";
  EXPECT_TRUE(saved.count("-A INPUT -p tcp -j NFQTRACE-Q11-IN"));
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u) << "the IPv6 leftovers of the earlier run stayed";
}

TEST_F(RulesXtables, RemoveLeftoversCopesWithAnyPart) {
  (void)spec(12);
  ASSERT_TRUE(succeeds("iptables -t mangle -N NFQTRACE-Q12-IN"));  // chain, no jump
  ASSERT_TRUE(succeeds("iptables -t mangle -N NFQTRACE-Q12-OUT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -A OUTPUT -p tcp --dport 1 -j NFQTRACE-Q12-OUT"));
  ASSERT_TRUE(succeeds("iptables -t mangle -A NFQTRACE-Q12-OUT -j NFQTRACE-Q12-IN"));
  ASSERT_TRUE(succeeds("ip6tables -t mangle -N NFQTRACE-Q12-IN"));
  ASSERT_TRUE(succeeds("ip6tables -t mangle -I INPUT -j NFQTRACE-Q12-IN"));
  ASSERT_TRUE(succeeds("ip6tables -t mangle -I INPUT -j NFQTRACE-Q12-IN"));
  // Someone else's chain with a similar name stays.
  ASSERT_TRUE(succeeds("iptables -t mangle -N NFQTRACE-Q123-IN"));
  const bool has_nft = succeeds("nft --version");
  if (has_nft) {
    ASSERT_TRUE(succeeds("nft add table inet nfqtrace_q12"));
  }

  auto removed = Rules::remove_leftovers(12);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(saved_rules(), std::set<std::string>{":NFQTRACE-Q123-IN - [0:0]"});
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
  if (has_nft) {
    EXPECT_FALSE(succeeds("nft list table inet nfqtrace_q12"));
  }
  EXPECT_TRUE(succeeds("iptables -t mangle -X NFQTRACE-Q123-IN"));
}

TEST_F(RulesXtables, TwoQueueIdsCoexist) {
  RuleSpec first = spec(13), second = spec(14);
  first.dports = {80};
  second.dports = {80};
  auto a = Rules::install(first);
  ASSERT_TRUE(a) << a.error().message();
  auto b = Rules::install(second);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_FALSE(saved_rules("iptables", "NFQTRACE-Q13").empty());
  EXPECT_FALSE(saved_rules("iptables", "NFQTRACE-Q14").empty());

  const auto second_before = saved_rules("iptables", "NFQTRACE-Q14");
  ASSERT_TRUE(a->remove());
  EXPECT_TRUE(saved_rules("iptables", "NFQTRACE-Q13").empty());
  EXPECT_TRUE(saved_rules("ip6tables", "NFQTRACE-Q13").empty());
  EXPECT_EQ(saved_rules("iptables", "NFQTRACE-Q14"), second_before);
  EXPECT_FALSE(saved_rules("ip6tables", "NFQTRACE-Q14").empty());
}

TEST_F(RulesXtables, Ipv6HostGetsIp6tablesRulesOnly) {
  RuleSpec s = spec(15);
  s.dports = {443};
  s.host = address("2001:db8::1");
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  EXPECT_EQ(nfqtrace_lines(), 0u);
  const auto saved = saved_rules("ip6tables");
  EXPECT_TRUE(saved.count(
      "-A NFQTRACE-Q15-OUT -d 2001:db8::1/128 -p tcp -m mark ! --mark 0x4e510000/0x4e510000 -m tcp "
      "--dport 443 -m addrtype --src-type LOCAL -j NFQUEUE --queue-num 15 --queue-bypass"))
      << ::testing::PrintToString(saved);
  EXPECT_FALSE(lines_with(capture("ip6tables-save -t mangle"), "-s 2001:db8::1/128").empty());
}

// [packets:bytes] of the saved rules (iptables-save -c) whose line has `needle`.
std::uint64_t packets_matched(const std::string& needle) {
  std::uint64_t total = 0;
  for (const std::string& line : lines_with(capture("iptables-save -c -t mangle"), needle)) {
    if (line.starts_with("[")) total += std::stoull(line.substr(1));
  }
  return total;
}

int tcp_socket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval timeout{5, 0};  // a dropped packet fails the test, not hangs it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

std::vector<char> read_to_end(int fd) {
  std::vector<char> data;
  char buffer[16384];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) data.insert(data.end(), buffer, buffer + n);
  return data;
}

bool write_all(int fd, const std::vector<char>& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

TEST_F(RulesXtables, LoopbackConnectionFlowsWithNobodyOnTheQueue) {
  const int listener = tcp_socket();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::uint16_t port = ntohs(addr.sin_port);

  // Both ends are ours: the client's packets match dport, the server's sport.
  RuleSpec s = spec(16);
  s.dports = {port};
  s.sports = {port};
  s.host = address("127.0.0.1");
  s.out_interface = "lo";
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();

  std::vector<char> payload(256 * 1024);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 251);
  std::thread echo([listener] {
    const int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    const auto received = read_to_end(conn);
    (void)write_all(conn, received);
    ::close(conn);
  });
  const int client = tcp_socket();
  const bool connected = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  const bool sent = connected && write_all(client, payload) && ::shutdown(client, SHUT_WR) == 0;
  const auto echoed = sent ? read_to_end(client) : std::vector<char>{};
  ::close(client);
  if (!connected) ::shutdown(listener, SHUT_RDWR);  // lets accept() return
  echo.join();
  ::close(listener);

  ASSERT_TRUE(connected);
  ASSERT_TRUE(sent);
  EXPECT_TRUE(echoed == payload) << "got " << echoed.size() << " bytes back of " << payload.size();
  // The packets did go through the queue rules, and the FINs were copied.
  EXPECT_GT(packets_matched("-j NFQUEUE"), 0u);
  EXPECT_GT(packets_matched("! --tcp-flags FIN,RST NONE"), 0u);
  // What the rule keeper reads to tell how many passed untraced.
  auto counted = Rules::queued_packets(16);
  ASSERT_TRUE(counted) << counted.error().message();
  EXPECT_EQ(*counted, packets_matched("-j NFQUEUE"));
  QueueRuleCounter counter(16);
  auto first = counter.read(), second = counter.read();
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(*first, *counted);
  EXPECT_EQ(*second, *counted);
}

TEST_F(RulesXtables, CountersOfNoRulesAreZeroAndNotSoughtAgain) {
  RuleSpec s = spec(22);
  s.dports = {80};
  auto none = Rules::queued_packets(22);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(*none, 0u);
  // A reader that found nothing looks no more (rules come before it, never
  // after): nothing to run every interval when nothing is there.
  QueueRuleCounter counter(22);
  auto empty = counter.read();
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_EQ(*empty, 0u);
  s.host = address("127.0.0.1");
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  // A SYN to port 80, which nobody listens to: it matches the queue rule and
  // passes (nobody on the queue either), and is refused.
  const int fd = tcp_socket();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(80);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  auto fresh = Rules::queued_packets(22);
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_GE(*fresh, 1u);
  auto still = counter.read();
  ASSERT_TRUE(still) << still.error().message();
  EXPECT_EQ(*still, 0u) << "the reader that found nothing looked again";
}

TEST(RulesBackend, DetectionMatchesWhatTheKernelTakes) {
  ScopedEnv automatic("NFQTRACE_RULES_BACKEND", nullptr);
  // The truth, by hand: a real transaction with a queue rule.
  const bool kernel_queues =
      succeeds("printf 'table inet nfqtrace_t { chain c { type filter hook postrouting priority 0; "
               "tcp dport 9 queue num 0 bypass; }; }' | nft -f -");
  if (kernel_queues) {
    ASSERT_TRUE(succeeds("nft delete table inet nfqtrace_t"));
  }
  EXPECT_EQ(Rules::nftables_usable(), kernel_queues);
  auto chosen = Rules::choose_backend();
  ASSERT_TRUE(chosen) << chosen.error().message();
  EXPECT_EQ(*chosen, kernel_queues ? RulesBackend::nftables : RulesBackend::xtables);
  EXPECT_FALSE(succeeds("nft list table inet nfqtrace_probe")) << "the probe left its table";
}

TEST(RulesBackend, ForcedNftablesWithoutQueueSupportIsAClearError) {
  if (Rules::nftables_usable()) GTEST_SKIP() << "this kernel has the nft queue expression";
  ScopedEnv forced("NFQTRACE_RULES_BACKEND", "nftables");
  RuleSpec s;
  s.queue_id = 17;
  s.dports = {80};
  auto rules = Rules::install(s);
  ASSERT_FALSE(rules);
  EXPECT_TRUE(one_line(rules.error().message()));
  EXPECT_NE(rules.error().message().find("queue"), std::string::npos) << rules.error().message();
  EXPECT_EQ(nfqtrace_lines(), 0u);
}

TEST(RulesBackend, UnknownBackendNameIsRejected) {
  ScopedEnv forced("NFQTRACE_RULES_BACKEND", "ipchains");
  auto chosen = Rules::choose_backend();
  ASSERT_FALSE(chosen);
  EXPECT_NE(chosen.error().message().find("ipchains"), std::string::npos);
}

TEST(RulesNft, InstallAndRemoveTable) {
  if (!Rules::nftables_usable()) GTEST_SKIP() << "kernel lacks the nft queue expression";
  ScopedEnv forced("NFQTRACE_RULES_BACKEND", "nftables");
  RuleSpec s;
  s.queue_id = 18;
  s.dports = {80, 443};
  s.host = address("127.0.0.1");
  auto rules = Rules::install(s);
  ASSERT_TRUE(rules) << rules.error().message();
  EXPECT_EQ(rules->backend(), RulesBackend::nftables);
  const std::string table = capture("nft list table inet nfqtrace_q18");
  EXPECT_NE(table.find("queue"), std::string::npos) << table;
  EXPECT_NE(table.find("bypass"), std::string::npos) << table;
  EXPECT_NE(table.find("counter packets"), std::string::npos) << table;
  auto counted = Rules::queued_packets(18);
  ASSERT_TRUE(counted) << counted.error().message();
  EXPECT_EQ(*counted, nft::queue_rule_packets(table));
  ASSERT_TRUE(rules->remove());
  EXPECT_FALSE(succeeds("nft list table inet nfqtrace_q18"));
}

// Everything but the queue expression, which this kernel may lack, goes
// through nft's check against the kernel (the counter before it included).
bool nft_accepts_without_queue(std::string script, std::uint16_t queue_id) {
  const std::string queue = "queue num " + std::to_string(queue_id) + " bypass";
  for (std::size_t at; (at = script.find(queue)) != std::string::npos;) {
    script.replace(at, queue.size(), "accept");
  }
  const std::string path = "/tmp/nfqtrace-rules-test-" + std::to_string(::getpid()) + ".nft";
  std::ofstream(path) << script;
  const bool accepted = succeeds("nft --check -f " + path);
  if (!accepted) std::cerr << capture("nft --check -f " + path + " 2>&1");
  ::unlink(path.c_str());
  return accepted;
}

TEST(RulesNft, ScriptIsAcceptedByNft) {
  if (!succeeds("nft --version")) GTEST_SKIP() << "nft not installed";
  RuleSpec s;
  s.queue_id = 19;
  s.dports = {443, 80};
  s.sports = {8080};
  s.host = address("2001:db8::1");
  s.out_interface = "lo";
  s.nflog_group = 4;
  std::string script = nft::install_script(s, Families{false, true});
  for (const char* expected :
       {"table inet nfqtrace_q19 {", "type filter hook postrouting priority mangle;",
        "type filter hook input priority mangle;",
        "ip6 daddr 2001:db8::1 oifname \"lo\" meta mark & 0x4e510000 != 0x4e510000 "
        "tcp dport { 80, 443 } fib saddr type local counter queue num 19 bypass",
        "tcp sport 8080 fib saddr type local counter queue num 19 bypass",
        "ip6 saddr 2001:db8::1 tcp sport { 80, 443 } tcp flags & (fin | rst) != 0 "
        "log group 4 snaplen 128 queue-threshold 1",
        "tcp dport 8080 tcp flags & (fin | rst) == 0 tcp option sack exists log group 4"}) {
    EXPECT_NE(script.find(expected), std::string::npos) << expected << " not in\n" << script;
  }
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;

  // One connection: its local port on both sides.
  RuleSpec one = s;
  one.sports.clear();
  one.local_port = 41000;
  script = nft::install_script(one, Families{false, true});
  EXPECT_NE(script.find("tcp sport 41000 tcp dport { 80, 443 } fib saddr type local counter queue num 19"), std::string::npos) << script;
  EXPECT_NE(script.find("tcp sport { 80, 443 } tcp dport 41000 tcp flags"), std::string::npos) << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;

  // No host: both families, or one of them; every ACK copied.
  s.host.reset();
  s.out_interface.reset();
  s.dports.clear();
  s.log_all_peer_acks = true;
  script = nft::install_script(s, Families{true, true});
  EXPECT_EQ(script.find("nfproto"), std::string::npos) << script;
  EXPECT_NE(script.find("tcp dport 8080 log group 4"), std::string::npos) << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;
  script = nft::install_script(s, Families{true, false});
  EXPECT_NE(script.find("meta nfproto ipv4 meta mark"), std::string::npos) << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;

  // ICMP errors through the queue too.
  s.queue_icmp = true;
  script = nft::install_script(s, Families{true, true});
  // s selects sport 8080: the quoted source port, 28 (IPv4) or 48 bytes in.
  EXPECT_NE(script.find("meta l4proto icmp icmp type { time-exceeded, destination-unreachable } "
                        "@th,224,16 8080 counter queue num 19 bypass"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("meta l4proto ipv6-icmp icmpv6 type { time-exceeded, "
                        "destination-unreachable } @th,384,16 8080 counter queue num 19 bypass"),
            std::string::npos)
      << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;
}

// Port 443, queue 19, NFLOG group 4, the routers' answers queued.
RuleSpec https_spec() {
  RuleSpec s;
  s.queue_id = 19;
  s.dports = {443};
  s.nflog_group = 4;
  s.queue_icmp = true;
  return s;
}

TEST(RulesNft, AGatewayAlsoSeesWhatItForwards) {
  if (!succeeds("nft --version")) GTEST_SKIP() << "nft not installed";
  RuleSpec s = https_spec();
  std::string script = nft::install_script(s, Families{true, true});
  EXPECT_EQ(script.find("hook forward"), std::string::npos) << script;
  EXPECT_NE(script.find("tcp dport 443 fib saddr type local counter queue"), std::string::npos) << script;
  s.forward = true;
  script = nft::install_script(s, Families{true, true});
  EXPECT_NE(script.find("tcp dport 443 counter queue"), std::string::npos) << script;
  const std::string in_head = "type filter hook input priority mangle; policy accept;\n";
  const std::string fwd_head = "type filter hook forward priority mangle; policy accept;\n";
  const std::size_t in = script.find(in_head), fwd = script.find(fwd_head);
  ASSERT_NE(in, std::string::npos) << script;
  ASSERT_NE(fwd, std::string::npos) << script;
  // The same rules in both chains ("\t}" closes a chain; the ICMP sets
  // hold "}" too).
  const std::string in_rules = script.substr(in + in_head.size(), fwd - in - in_head.size());
  const std::string fwd_rules = script.substr(fwd + fwd_head.size());
  EXPECT_NE(in_rules.find("icmp type { time-exceeded"), std::string::npos) << script;
  EXPECT_EQ(fwd_rules.substr(0, fwd_rules.find("\t}")), in_rules.substr(0, in_rules.find("\t}")))
      << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;
}

TEST(RulesNft, InDupModeTheConnectionsPacketsAreCopiedNotQueued) {
  if (!succeeds("nft --version")) GTEST_SKIP() << "nft not installed";
  RuleSpec s = https_spec();
  s.copy_outgoing = true;
  const std::string script = nft::install_script(s, Families{true, true});
  EXPECT_NE(script.find("tcp dport 443 fib saddr type local log prefix \"nfqtrace-out\" group 4 "
                        "snaplen 1280 queue-threshold 1\n"),
            std::string::npos)
      << script;
  // The queue takes the routers' answers only.
  EXPECT_EQ(script.find("tcp dport 443 fib saddr type local counter queue"), std::string::npos)
      << script;
  EXPECT_NE(script.find("time-exceeded, destination-unreachable } @th,240,16 443 counter queue"),
            std::string::npos)
      << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;

  // With the marks: a round's next packet is copied alone, then the watch
  // bit cleared leaves the connection waiting past us (first in the chain).
  s.bypass_mark = 0x4e510000;
  s.watch_mark = 0x8000;
  s.round_mark = 0x4000;
  const std::string marked = nft::install_script(s, Families{true, true});
  const std::string one_copy =
      "meta mark & 0x4e510000 != 0x4e510000 tcp dport 443 ct mark & 0x4e51c000 == 0x4e51c000 tcp "
      "flags & (syn | fin | rst) == 0 fib saddr type local log prefix \"nfqtrace-out\" group 4 "
      "snaplen 1280 queue-threshold 1 ct mark set ct mark & 0xffff7fff\n";
  const std::size_t at = marked.find(one_copy);
  ASSERT_NE(at, std::string::npos) << marked;
  EXPECT_LT(at, marked.find("ct mark & 0x4e510000 == 0x4e510000")) << marked;
  EXPECT_TRUE(nft_accepts_without_queue(marked, 19)) << marked;
}

TEST(RulesNft, AConnectionMarkedForTheQueueIsQueuedTheOthersCopied) {
  if (!succeeds("nft --version")) GTEST_SKIP() << "nft not installed";
  RuleSpec s;
  s.queue_id = 19;
  s.nflog_group = 4;
  s = clients_choose_their_mode(s);
  const std::string script = nft::install_script(s, Families{true, true});
  const std::string queued =
      "meta mark & 0x4e510000 != 0x4e510000 tcp sport 7400 ct mark & 0x4e51c000 == 0xc000 fib "
      "saddr type local counter queue num 19 bypass\n";
  const std::string copied =
      "meta mark & 0x4e510000 != 0x4e510000 tcp sport 7400 fib saddr type local log prefix "
      "\"nfqtrace-out\"";
  ASSERT_NE(script.find(queued), std::string::npos) << script;
  ASSERT_NE(script.find(copied), std::string::npos) << script;
  EXPECT_LT(script.find(queued), script.find(copied)) << script;
  EXPECT_NE(script.find("tcp dport 7400 ct mark & 0x4e51c000 == 0xc000 log group 4"), std::string::npos)
      << script;
  EXPECT_NE(script.find("tcp dport 7400 ct mark & 0x4e51c000 != 0xc000 tcp flags & (fin | rst) == 0 "
                        "tcp option sack exists log group 4"),
            std::string::npos)
      << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;
}

TEST(RulesNft, AWatchedConnectionsPacketsAreCopiedThenSkipTheQueue) {
  RuleSpec s;
  s.queue_id = 19;
  s.dports = {443};
  s.nflog_group = 5;
  s.bypass_mark = 0x4e510000;
  s.watch_mark = 0x8000;
  s.round_mark = 0x4000;
  const std::string script = nft::install_script(s, Families{true, true});
  EXPECT_NE(script.find("ct mark & 0x4e514000 == 0x4e510000 tcp flags & (syn | fin | rst) == 0 return"),
            std::string::npos)
      << script;
  const std::string copy =
      "ct mark & 0x4e51c000 == 0x4e518000 tcp flags & (syn | fin | rst) == 0 log group 5 snaplen "
      "128 queue-threshold 1";
  const std::size_t at = script.find(copy);
  ASSERT_NE(at, std::string::npos) << script;
  EXPECT_LT(at, script.find("ct mark & 0x4e510000 == 0x4e510000")) << script;
  EXPECT_TRUE(nft_accepts_without_queue(script, 19)) << script;
}

// Every queue rule has a counter, and only queue rules have one: the keeper
// adds them up.
TEST(RulesNft, QueueRulesAndOnlyThemCount) {
  RuleSpec s;
  s.queue_id = 23;
  s.dports = {80, 443};
  s.sports = {8080};
  s.bypass_mark = 0x4e510000;
  const std::string script = nft::install_script(s, Families{true, true});
  std::size_t queue_rules = 0, counters = 0;
  for (const std::string& line : lines_with(script, "queue num 23 bypass")) {
    ++queue_rules;
    EXPECT_NE(line.find(" counter queue num 23 bypass"), std::string::npos) << line;
  }
  for (std::size_t at = 0; (at = script.find("counter", at)) != std::string::npos; ++at) ++counters;
  EXPECT_EQ(queue_rules, 2u) << script;
  EXPECT_EQ(counters, 2u) << script;
  EXPECT_TRUE(lines_with(script, "ct mark").size() == 2 &&
              lines_with(script, "ct mark")[0].find("counter") == std::string::npos)
      << "the bypass rules are as they were:\n" << script;
}

// `nft list table` of our table, as nft 1.0 (queue flags bypass to N) and
// older versions (queue num N bypass) print it, with the log rules'
// "queue-threshold" in chain in and counters elsewhere that are not ours.
// Queue rules of both chains count (chain in queues ICMP errors).
TEST(RulesNft, QueueRulePacketsFromTheListing) {
  const std::string listing =
      "table inet nfqtrace_q0 {\n"
      "\tchain out {\n"
      "\t\ttype filter hook postrouting priority mangle; policy accept;\n"
      "\t\tct mark & 0x4e510000 == 0x4e510000 tcp flags ! fin,syn,rst return\n"
      "\t\tmeta mark & 0x4e510000 != 0x4e510000 tcp dport { 80, 443 } counter packets 1234 "
      "bytes 567890 queue flags bypass to 0\n"
      "\t\tip daddr 192.0.2.1 oifname \"eth0\" meta mark & 0x4e510000 != 0x4e510000 tcp sport 8080 "
      "counter packets 66 bytes 7000 queue num 0 bypass\n"
      "\t\ttcp dport 9 counter packets 1000000 bytes 1 accept\n"
      "\t}\n"
      "\n"
      "\tchain in {\n"
      "\t\ttype filter hook input priority mangle; policy accept;\n"
      "\t\ttcp sport { 80, 443 } tcp flags fin,rst counter packets 5 bytes 5 log group 32768 "
      "snaplen 128 queue-threshold 1\n"
      "\t\ttcp sport 7 counter packets 9 bytes 9 queue flags bypass to 0\n"
      "\t}\n"
      "}\n";
  EXPECT_EQ(nft::queue_rule_packets(listing), 1309u);
  EXPECT_EQ(nft::queue_rule_packets(""), 0u);
  // Before the counter existed: queue rules without one count nothing.
  EXPECT_EQ(nft::queue_rule_packets("table inet nfqtrace_q0 {\n\tchain out {\n"
                                    "\t\ttcp dport 80 queue flags bypass to 0\n\t}\n}\n"),
            0u);
  // Numbers beyond 32 bits; garbage is no number.
  EXPECT_EQ(nft::queue_rule_packets("\tchain out {\n\t\tcounter packets 123456789012 bytes 1 "
                                    "queue to 3\n\t\tcounter packets x bytes 1 queue to 3\n"),
            123456789012u);
}

// A table of ours on a kernel without the nft queue expression: counters on
// other rules are read from the kernel and none of them is a queue rule's.
TEST(RulesNft, QueuedPacketsOfATableWithoutQueueRules) {
  if (!succeeds("nft --version")) GTEST_SKIP() << "nft not installed";
  ASSERT_TRUE(succeeds("printf 'table inet nfqtrace_q24 { chain out { type filter hook postrouting "
                       "priority mangle; tcp dport 9 counter accept; }; }' | nft -f -"));
  auto counted = Rules::queued_packets(24);
  EXPECT_TRUE(succeeds("nft delete table inet nfqtrace_q24"));
  ASSERT_TRUE(counted) << counted.error().message();
  EXPECT_EQ(*counted, 0u);
  auto none = Rules::queued_packets(24);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(*none, 0u);
}

TEST(RulesInput, MistakesGiveOneLineErrorsAndNoRules) {
  ScopedEnv forced("NFQTRACE_RULES_BACKEND", "xtables");
  struct Case {
    const char* what;
    RuleSpec spec;
    const char* expected_in_message;
  };
  std::vector<Case> cases;
  const auto with = [](auto change) {
    RuleSpec s;
    s.queue_id = 20;
    s.dports = {80};
    change(s);
    return s;
  };
  cases.push_back({"no ports", with([](RuleSpec& s) { s.dports.clear(); }), "port"});
  cases.push_back({"port 0", with([](RuleSpec& s) { s.sports = {0}; }), "port 0"});
  cases.push_back({"empty mark", with([](RuleSpec& s) { s.probe_mark = 0; }), "mark"});
  cases.push_back({"space in interface", with([](RuleSpec& s) { s.out_interface = "bad name"; }), "bad name"});
  cases.push_back({"long interface", with([](RuleSpec& s) { s.out_interface = "abcdefghijklmnop"; }), "15"});
  cases.push_back({"no such interface", with([](RuleSpec& s) { s.out_interface = "nfqt-none0"; }), "nfqt-none0"});
  cases.push_back({"newline in interface", with([](RuleSpec& s) { s.out_interface = "lo\n"; }), "interface"});
  cases.push_back({"no family", with([](RuleSpec& s) { s.ipv4 = s.ipv6 = false; }), "IPv"});
  cases.push_back({"host of a disabled family", with([](RuleSpec& s) {
                     s.ipv6 = false;
                     s.host = address("::1");
                   }),
                   "IPv6"});
  for (const Case& c : cases) {
    auto rules = Rules::install(c.spec);
    ASSERT_FALSE(rules) << c.what;
    const std::string message = rules.error().message();
    EXPECT_TRUE(one_line(message)) << c.what << ": " << message;
    EXPECT_NE(message.find(c.expected_in_message), std::string::npos) << c.what << ": " << message;
  }
  EXPECT_EQ(nfqtrace_lines(), 0u);
  EXPECT_EQ(nfqtrace_lines("ip6tables"), 0u);
}

// A tool that fails, and quits without reading its (large) input: the error
// names it, quotes its stderr and the line it blames, and the early exit
// (EPIPE for us) must not kill the process with SIGPIPE.
TEST(RulesInput, FailingToolIsNamedInTheError) {
  const std::string dir = "/tmp/nfqtrace-rules-fake-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  for (const std::string tool : {"iptables-restore", "ip6tables-restore"}) {
    const std::string path = dir + "/" + tool;
    std::ofstream(path) << "#!/bin/sh\necho 'Warning: something harmless' >&2\n"
                           "echo '" << tool << ": line 2 failed: Operation not permitted' >&2\nexit 1\n";
    ::chmod(path.c_str(), 0700);
  }
  const char* old_path = std::getenv("PATH");
  ScopedEnv path("PATH", (dir + ":" + (old_path ? old_path : "")).c_str());
  ScopedEnv forced("NFQTRACE_RULES_BACKEND", "xtables");
  RuleSpec s;
  s.queue_id = 21;
  for (std::uint16_t port = 1; port <= 3000; ++port) s.dports.push_back(port);  // > a pipe's buffer
  auto rules = Rules::install(s);
  ASSERT_FALSE(rules);
  const std::string message = rules.error().message();
  EXPECT_TRUE(one_line(message)) << message;
  EXPECT_TRUE(message.starts_with("iptables-restore --noflush failed: iptables-restore: line 2 failed"))
      << message;
  EXPECT_NE(message.find("script line 2: :NFQTRACE-Q21-OUT - [0:0])"), std::string::npos) << message;
  EXPECT_TRUE(succeeds("rm -r " + dir));
  EXPECT_EQ(nfqtrace_lines(), 0u);
}

}  // namespace
}  // namespace nfqtrace::sys
