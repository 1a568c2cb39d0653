#include "nfqtrace/wire/address.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace nfqtrace::wire {

Address Address::v4(Bytes four) {
  Address a;
  a.family = Family::v4;
  std::copy_n(four.begin(), 4, a.bytes.begin());
  return a;
}

Address Address::v6(Bytes sixteen) {
  Address a;
  a.family = Family::v6;
  std::copy_n(sixteen.begin(), 16, a.bytes.begin());
  return a;
}

std::optional<Address> Address::parse(std::string_view text) {
  std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::v4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::v6;
    return a;
  }
  return std::nullopt;
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace nfqtrace::wire
