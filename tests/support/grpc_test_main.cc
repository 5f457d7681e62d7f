// main() for tests that talk to gRPC: lbkit's policies must be registered
// before gRPC builds its configuration, and gRPC must be initialised for
// pollsets and ExecCtx.

#include <cstdio>
#include <grpc/grpc.h>
#include <string>

#include "gtest/gtest.h"
#include "lbkit/lbkit.h"

#include "absl/status/status.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  absl::Status registered = lbkit::RegisterAll();
  if (!registered.ok()) {
    fprintf(stderr, "lbkit::RegisterAll: %s\n", registered.ToString().c_str());
    return 1;
  }
  grpc_init();
  int rc = RUN_ALL_TESTS();
  grpc_shutdown();
  return rc;
}
