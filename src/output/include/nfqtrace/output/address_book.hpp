// What is known of a hop's address beyond the address itself: its reverse
// DNS name and its autonomous system, once looked up. The tools fill it as
// look-ups come back (never holding a result back for one); every format
// reads it, and writes what is there at the time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::output {

struct AddressInfo {
  std::string name;                  // reverse DNS; empty: none, or not yet
  std::optional<std::uint32_t> asn;  // origin AS
  std::string as_name;               // empty: unknown
};

// Read-only: the formats take it as `const AddressBook*`, nullptr when no
// look-up is on.
class AddressBook {
 public:
  virtual ~AddressBook() = default;
  // nullptr when nothing is known (yet) of `addr`.
  virtual const AddressInfo* find(const wire::Address& addr) const = 0;
};

}  // namespace nfqtrace::output
