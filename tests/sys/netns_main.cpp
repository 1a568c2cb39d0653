// Runs the OS adapter tests inside a network namespace of their own, so
// rules, queues and sockets never touch the machine's real network.
// Without root the whole binary is skipped (exit 77, which CTest reports).
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (geteuid() != 0) {
    std::fprintf(stderr, "sys_tests: needs root (network namespaces); skipped\n");
    return 77;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("sys_tests: unshare(CLONE_NEWNET)");
    return 1;
  }
  if (std::system("ip link set lo up") != 0) return 1;
  return RUN_ALL_TESTS();
}
