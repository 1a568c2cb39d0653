// A finished trace as a RIPE Atlas traceroute result (the result format of
// firmware 4750 and later, "fw" >= 5000), one JSON object per line, so
// tools written for Atlas results (sagan, tracevis, IHR's pipelines) read
// nfqtrace's traces. docs/formats/atlas.md says field by field where each
// value comes from.
//
// What nfqtrace has no value for, and what goes there instead:
//  - "fw": Atlas' firmware version, by which readers pick the result
//    layout. 5000: the layout this result follows. nfqtrace's own version
//    goes in "mver" (the measurement code's version, as Atlas uses it).
//  - "lts" (seconds since the clock was last known in sync): -1, Atlas'
//    "not known".
//  - "msm_id", "prb_id", "group_id": there is no Atlas measurement or
//    probe; written only when the context gives them.
//  - "from" (the probe's public address as Atlas' controller sees it): the
//    context's, "" when not known (Atlas writes "" too when it has none).
//  - "paris_id": 1. Every probe of a trace carries the connection's own
//    five-tuple, which is what a Paris traceroute keeps constant; there is
//    one such variation per trace.
//  - "size" (probe size): the context's when known, else left out.
//  - a reply's "size" (the reply's size): nfqtrace does not record it, so it
//    is left out rather than filled with something else.
//  - "late" (Atlas: how many probes later a reply came, with no "rtt"):
//    nfqtrace's late replies came after their TTL was taken for silent,
//    still with their own measured RTT; they are written as ordinary
//    replies with "rtt", and "late" is never written.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::output {

// What a result needs that the trace does not hold.
struct AtlasContext {
  std::string version;                   // nfqtrace's, written as "mver"
  std::string from;                      // this host's public address; "": unknown
  std::string msm_name = "Traceroute";   // Atlas' name for traceroute results
  std::optional<std::int64_t> msm_id, prb_id, group_id;
  std::optional<std::uint16_t> probe_size;  // the probes' IP length, when known
};

// {"type":"traceroute","fw":5000,"mver","lts":-1,"af","src_addr","dst_addr",
//  "dst_name","proto":"TCP","paris_id":1,"size"?,"timestamp","endtime",
//  "from","msm_name","msm_id"?,"prb_id"?,"group_id"?,
//  "result":[{"hop":N,"result":[{"from","rtt","ttl","flags"?,"err"?,"ittl"?,
//  "icmpext"?} | {"x":"*"}, ...]}]}
// Each hop lists its replies, then a {"x":"*"} for each of its probes no
// reply answered; a silent hop has one per probe sent (at least one).
nlohmann::json atlas_json(const core::TraceResult& trace, const AtlasContext& context);

}  // namespace nfqtrace::output
