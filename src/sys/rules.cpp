#include "nfqtrace/sys/rules.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "command.hpp"
#include "rules_nft.hpp"
#include "rules_spec.hpp"
#include "rules_xtables.hpp"

namespace nfqtrace::sys {
namespace {

constexpr const char* kBackendVariable = "NFQTRACE_RULES_BACKEND";

bool xtables_installed() {
  return xtables::find_tools(wire::Family::v4) || xtables::find_tools(wire::Family::v6);
}

// The families xtables can serve for this spec: IPv6 silently dropped when
// ip6tables does not work, unless the spec cannot do without it.
Result<Families> xtables_families(const RuleSpec& spec) {
  Families families = wanted_families(spec);
  if (families.v6) {
    if (auto usable = xtables::check_usable(wire::Family::v6); !usable) {
      if (spec.host || !families.v4) return Error{"IPv6 rules needed, but " + usable.error().what};
      families.v6 = false;
    }
  }
  if (families.v4) {
    if (auto usable = xtables::check_usable(wire::Family::v4); !usable) return usable.error();
  }
  return families;
}

Status remove_xtables(std::uint16_t queue_id, Families families) {
  Status result = Ok{};
  if (families.v4) result = xtables::remove(queue_id, wire::Family::v4);
  if (families.v6) {
    // Both are tried; the first error is the one reported.
    Status v6 = xtables::remove(queue_id, wire::Family::v6);
    if (result && !v6) result = v6;
  }
  return result;
}

Result<Families> install_xtables(const RuleSpec& spec) {
  auto families = xtables_families(spec);
  if (!families) return families.error();
  // A family that gets no rules this time may still hold some of a run that
  // had other settings.
  const Families others{!families->v4 && static_cast<bool>(xtables::check_usable(wire::Family::v4)),
                        !families->v6 && static_cast<bool>(xtables::check_usable(wire::Family::v6))};
  if (auto ok = remove_xtables(spec.queue_id, others); !ok) return ok.error();
  if (families->v4) {
    if (auto ok = xtables::install(spec, wire::Family::v4); !ok) return ok.error();
  }
  if (families->v6) {
    if (auto ok = xtables::install(spec, wire::Family::v6); !ok) {
      // All or nothing: take back the IPv4 half.
      if (families->v4) (void)xtables::remove(spec.queue_id, wire::Family::v4);
      return ok.error();
    }
  }
  return families;
}

// xtables leftovers of every family whose tools work (with IPv6 disabled,
// ip6tables rules cannot exist).
Status remove_xtables_leftovers(std::uint16_t queue_id) {
  Families families;
  families.v4 = static_cast<bool>(xtables::check_usable(wire::Family::v4));
  families.v6 = static_cast<bool>(xtables::check_usable(wire::Family::v6));
  return remove_xtables(queue_id, families);
}

}  // namespace

struct Rules::Impl {
  RulesBackend backend;
  std::uint16_t queue_id;
  Families families;  // xtables: which of iptables/ip6tables got rules
  bool installed = true;
};

Rules::Rules(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Rules::Rules(Rules&&) noexcept = default;

Rules& Rules::operator=(Rules&& other) noexcept {
  if (this != &other) {
    // The rules this object held go, as they would in its destructor.
    Rules old(std::move(*this));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Rules::~Rules() {
  if (!impl_ || !impl_->installed) return;
  // No caller left to tell: say it, rather than leave rules silently.
  if (auto ok = remove(); !ok) std::fprintf(stderr, "nfqtrace: %s\n", ok.error().message().c_str());
}

bool Rules::nftables_usable() { return nft::queue_supported(); }

Result<RulesBackend> Rules::choose_backend() {
  const char* forced = std::getenv(kBackendVariable);
  if (forced != nullptr && *forced != '\0') {
    const std::string_view name = forced;
    if (name == "nftables") {
      if (!nft::queue_supported()) {
        return Error{std::string(kBackendVariable) +
                     "=nftables, but nft is missing or the kernel lacks the nft queue expression"};
      }
      return RulesBackend::nftables;
    }
    if (name == "xtables") {
      if (!xtables_installed()) {
        return Error{std::string(kBackendVariable) + "=xtables, but iptables-restore is not installed"};
      }
      return RulesBackend::xtables;
    }
    return Error{std::string(kBackendVariable) + " must be nftables or xtables, not \"" +
                 printable(name) + "\""};
  }
  if (nft::queue_supported()) return RulesBackend::nftables;
  if (xtables_installed()) return RulesBackend::xtables;
  return Error{
      "no way to set packet filter rules: need nft with a kernel that has the nft queue "
      "expression, or iptables-restore"};
}

Result<Rules> Rules::install(const RuleSpec& spec) {
  if (auto ok = validate(spec); !ok) return ok.error();
  auto backend = choose_backend();
  if (!backend) return backend.error();
  auto impl = std::make_unique<Impl>(Impl{*backend, spec.queue_id, Families{}});
  if (*backend == RulesBackend::nftables) {
    // Rules of an xtables run would queue the same packets a second time.
    if (auto ok = remove_xtables_leftovers(spec.queue_id); !ok) return ok.error();
    impl->families = wanted_families(spec);
    if (auto ok = nft::install(spec, impl->families); !ok) return ok.error();
  } else {
    if (auto ok = nft::remove(spec.queue_id); !ok) return ok.error();
    // Leftovers of our own back end go in the same transaction as the rules.
    auto families = install_xtables(spec);
    if (!families) return families.error();
    impl->families = *families;
  }
  return Rules(std::move(impl));
}

Result<std::uint64_t> Rules::queued_packets(std::uint16_t queue_id) {
  return QueueRuleCounter(queue_id).read();
}

Status Rules::remove_leftovers(std::uint16_t queue_id) {
  Status nft_result = nft::remove(queue_id);
  Status xtables_result = remove_xtables_leftovers(queue_id);
  return nft_result ? xtables_result : nft_result;
}

void Rules::release() {
  if (impl_) impl_->installed = false;
}

Status Rules::remove() {
  if (!impl_ || !impl_->installed) return Ok{};
  Status result = impl_->backend == RulesBackend::nftables
                      ? nft::remove(impl_->queue_id)
                      : remove_xtables(impl_->queue_id, impl_->families);
  if (result) impl_->installed = false;
  return result;
}

RulesBackend Rules::backend() const { return impl_->backend; }

namespace {

// The counters of our queue rules in one family's xtables: nullopt when that
// family holds no rules of ours (or has no tools).
Result<std::optional<std::uint64_t>> xtables_counter(std::uint16_t queue_id, wire::Family family) {
  const auto tools = xtables::find_tools(family);
  if (!tools) return std::optional<std::uint64_t>{};
  auto out = run_command(tools->save_path, {tools->save_name, "-c", "-t", "mangle"});
  if (!out) return out.error();
  if (out->exit_code != 0) return Error{describe_failure(tools->save_name + " -c", *out)};
  const auto chains = xtables::find_leftovers(out->out, queue_id).chains;
  if (std::find(chains.begin(), chains.end(), xtables::out_chain(queue_id)) == chains.end())
    return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{xtables::queue_rule_packets(out->out, queue_id)};
}

}  // namespace

Result<std::uint64_t> QueueRuleCounter::search() {
  std::uint64_t total = 0;
  std::optional<Error> failed;
  if (auto n = nft::queued_packets(queue_id_); !n) {
    failed = n.error();
  } else if (*n) {
    nft_ = true;
    total += **n;
  }
  for (wire::Family family : {wire::Family::v4, wire::Family::v6}) {
    auto n = xtables_counter(queue_id_, family);
    if (!n) {
      // ip6tables fails where IPv6 is disabled, and then holds no rules.
      if (family == wire::Family::v4 && !failed) failed = n.error();
      continue;
    }
    if (!*n) continue;
    (family == wire::Family::v4 ? v4_ : v6_) = true;
    total += **n;
  }
  // A place that could not be read may hold rules: look again next time,
  // unless the rules were found elsewhere (one back end holds them all).
  if (failed && !nft_ && !v4_ && !v6_) return *failed;
  searched_ = true;
  return total;
}

Result<std::uint64_t> QueueRuleCounter::read() {
  if (!searched_) return search();
  std::uint64_t total = 0;
  if (nft_) {
    auto n = nft::queued_packets(queue_id_);
    if (!n) return n.error();
    if (*n) total += **n;
  }
  for (wire::Family family : {wire::Family::v4, wire::Family::v6}) {
    if (!(family == wire::Family::v4 ? v4_ : v6_)) continue;
    auto n = xtables::queued_packets(queue_id_, family);
    if (!n) return n.error();
    total += *n;
  }
  return total;
}

}  // namespace nfqtrace::sys
