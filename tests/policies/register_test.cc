// lbkit::RegisterAll() called first (by the test main): every policy it
// names is known to gRPC's registry, and calling it again, from several
// threads, changes nothing.

#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lbkit/lbkit.h"
#include "tests/support/fake_helper.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lbkit {
namespace {

TEST(RegisterAll, IsIdempotentAcrossThreads) {
  std::vector<absl::Status> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = RegisterAll(); });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsRegistered());
}

TEST(RegisterAll, EveryNamedPolicyIsKnownToGrpc) {
  const std::vector<std::string> names = PolicyNames();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "lbkit_round_robin");
  for (const std::string& name : names) {
    EXPECT_EQ(name.rfind("lbkit_", 0), 0u) << name;
    bool requires_config = true;
    EXPECT_TRUE(grpc_core::CoreConfiguration::Get()
                    .lb_policy_registry()
                    .LoadBalancingPolicyExists(name, &requires_config))
        << name;
    auto config = testing::ParseConfig(name, "{}");
    if (name == "lbkit_weighted_subsets") {
      // Its subsets have no sensible default.
      EXPECT_EQ(config.status().message(),
                "errors validating lbkit_weighted_subsets LB policy config: [field:subsets "
                "error:field not present]");
    } else if (name == "lbkit_routes") {
      EXPECT_EQ(config.status().message(),
                "errors validating lbkit_routes LB policy config: [field:routes error:must list "
                "at least one route; field:subsets error:field not present]");
    } else {
      EXPECT_TRUE(config.ok()) << name << ": " << config.status();
    }
  }
}

TEST(RegisterAll, EveryNamedResolverIsKnownToGrpc) {
  const std::vector<std::string> schemes = ResolverSchemes();
  ASSERT_FALSE(schemes.empty());
  for (const std::string& scheme : schemes) {
    EXPECT_EQ(scheme.rfind("lbkit-", 0), 0u) << scheme;
    EXPECT_TRUE(grpc_core::CoreConfiguration::Get().resolver_registry().IsValidTarget(
        scheme + ":///127.0.0.1:1"))
        << scheme;
  }
}

}  // namespace
}  // namespace lbkit
