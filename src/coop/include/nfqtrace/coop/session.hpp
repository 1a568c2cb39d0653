// What both ends of a cooperating connection decide alike.
#pragma once

#include <string>

namespace nfqtrace::coop {

// Close the connection, once what is unsent has been written (best effort).
struct CloseConnection {
  // "finished" after a complete exchange, otherwise the problem, one line.
  std::string reason;
  bool failed = false;
};

}  // namespace nfqtrace::coop
