// scamper's binary warts format (warts(5)), so scamper's readers
// (sc_warts2json, sc_warts2text, sc_wartsdump, sc_analysis_dump...) read
// nfqtrace's traces. A file is a list record and a cycle-start record
// (file_start), one traceroute record per ended trace (trace), and a
// cycle-stop record (file_end); each call returns the bytes to append.
//
// A trace is written as scamper's "tcp-ack" method (trace type 6): every
// probe is a copy of an established connection's segment, ACK set. Each
// reply is a hop record: address, probe TTL, reply TTL (when known), RTT
// (microseconds), ICMP type and code, quoted TTL, MPLS label stacks as ICMP
// extensions, or for the destination's own answer a TCP reply with the ACK
// flag. Silent TTLs have no hop record (scamper records replies only).
// Addresses are embedded in each record (the deprecated global address
// records are not used), so every record stands alone and a file of any
// number of traces needs no state across them.
//
// Not written, since nfqtrace does not know them: reply size, reply IP ID
// and ToS, quoted IP length, and the probe size unless given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::output {

struct WartsFileInfo {
  std::string list_name = "nfqtrace";  // the list every trace belongs to
  std::string description;             // of the list; empty: left out
  std::string monitor;                 // the host that traced; empty: left out
  core::Duration start{0};             // the cycle's start, since the Unix epoch
};

class WartsWriter {
 public:
  explicit WartsWriter(WartsFileInfo info);

  // The list and cycle-start records a file begins with.
  std::vector<std::uint8_t> file_start() const;
  // One traceroute record. probe_size: the probes' IP length, when known.
  std::vector<std::uint8_t> trace(const core::TraceResult& trace,
                                  std::optional<std::uint16_t> probe_size = std::nullopt) const;
  // The cycle-stop record a file ends with; stop since the Unix epoch.
  std::vector<std::uint8_t> file_end(core::Duration stop) const;

 private:
  WartsFileInfo info_;
};

// Values warts(5) and scamper give these (scamper_trace.h), for the tests.
namespace warts {
inline constexpr std::uint16_t magic = 0x1205;
inline constexpr std::uint16_t type_list = 0x0001, type_cycle_start = 0x0002,
                               type_cycle_stop = 0x0004, type_trace = 0x0006;
inline constexpr std::uint8_t trace_type_tcp_ack = 0x06;
inline constexpr std::uint8_t stop_completed = 0x01, stop_unreach = 0x02, stop_gaplimit = 0x05,
                              stop_hoplimit = 0x07, stop_halted = 0x09;
inline constexpr std::uint8_t hop_flag_reply_ttl = 0x10, hop_flag_tcp = 0x20;
inline constexpr std::uint8_t tcp_ack = 0x10;
// Stop reason of a trace: reached -> completed, gaplimit -> gaplimit,
// maxttl -> hoplimit, closed and stopped (the connection or the program
// ended it) -> halted; unreach when the last reply was an ICMP unreachable.
std::uint8_t stop_reason(const core::TraceResult& trace);
}  // namespace warts

}  // namespace nfqtrace::output
