// lbkit::RegisterAll() after gRPC has built its configuration must not abort
// the process (as CoreConfiguration::RegisterBuilder would): it reports
// FAILED_PRECONDITION, and stays consistent on later calls.

#include <algorithm>
#include <cstddef>
#include <grpcpp/grpcpp.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lbkit/lbkit.h"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace {

TEST(RegisterLate, AfterAChannelExistsReturnsFailedPrecondition) {
  auto channel = grpc::CreateChannel("ipv4:127.0.0.1:1",
                                     grpc::InsecureChannelCredentials());
  ASSERT_NE(channel, nullptr);
  // Several threads at once: one registration attempt, one answer for all.
  std::vector<absl::Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = lbkit::RegisterAll(); });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(s.message().find("before the first channel or server"),
              std::string::npos)
        << s;
  }
  EXPECT_FALSE(lbkit::IsRegistered());
  EXPECT_EQ(lbkit::RegisterAll(), results[0]);
}

}  // namespace
