// Health checks end to end on real greeter servers, over plaintext, TLS and
// mutual TLS: in poll mode (healthCheck: {"mode": "poll"}) NOT_SERVING for
// unhealthyThreshold polls takes a backend out and healthyThreshold SERVING
// polls bring it back, a server without a health service counts as
// healthy; "watch" mode works per policy. The polls must use the channel's
// own credentials: with the plaintext checks of old, every TLS backend
// looked unhealthy and every call failed.

#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <ratio>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/test_certs.h"

#include "absl/strings/str_cat.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;
using Clock = std::chrono::steady_clock;

enum class Transport { kPlaintext, kTls, kMutualTls };

std::string TransportName(Transport t) {
  switch (t) {
    case Transport::kPlaintext: return "Plaintext";
    case Transport::kTls: return "Tls";
    case Transport::kMutualTls: return "MutualTls";
  }
  return "?";
}

// Backends and channels for one transport.
class TransportEnv {
 public:
  explicit TransportEnv(Transport transport) : transport_(transport) {
    if (transport_ != Transport::kPlaintext) certs_ = std::make_unique<testing::TestCerts>();
  }

  std::unique_ptr<BackendProcess> Start(const std::string& name,
                                        std::vector<std::string> flags = {}) const {
    if (certs_ != nullptr) {
      for (auto& f : certs_->ServerFlags(transport_ == Transport::kMutualTls)) {
        flags.push_back(f);
      }
    }
    return BackendProcess::Start(name, flags);
  }

  std::shared_ptr<grpc::Channel> Channel(const Backends& backends,
                                         const std::string& service_config) const {
    grpc::ChannelArguments args;
    if (certs_ == nullptr) {
      return testing::MakeChannel(testing::Ipv4Target(backends), service_config, args);
    }
    // The certificate names greeter.lbkit.test, which the channel checks
    // through the TLS target name override (TLS) or its authority (mutual
    // TLS): the polls must follow either.
    if (transport_ == Transport::kTls) {
      args.SetSslTargetNameOverride(testing::kTlsServerName);
    } else {
      args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, testing::kTlsServerName);
    }
    return testing::MakeChannel(testing::Ipv4Target(backends), service_config, args,
                                certs_->ClientCredentials(transport_ == Transport::kMutualTls));
  }

 private:
  const Transport transport_;
  std::unique_ptr<testing::TestCerts> certs_;
};

std::string PollConfig(const std::string& policy) {
  return absl::StrCat(R"({"loadBalancingConfig": [{")", policy, R"(": {"healthCheck": {
      "mode": "poll", "interval": "0.2s", "timeout": "0.5s",
      "unhealthyThreshold": 3, "healthyThreshold": 2}}}]})");
}

struct PollCase {
  const char* policy;
  Transport transport;
};

void PrintTo(const PollCase& c, std::ostream* os) {
  *os << c.policy << " over " << TransportName(c.transport);
}
void PrintTo(Transport t, std::ostream* os) { *os << TransportName(t); }

class HealthPollE2E : public ::testing::TestWithParam<PollCase> {};

TEST_P(HealthPollE2E, ThresholdsTakeABackendOutAndBringItBack) {
  const PollCase& c = GetParam();
  TransportEnv env(c.transport);
  Backends backends;
  for (int i = 0; i < 3; ++i) backends.push_back(env.Start(absl::StrCat("hp-", i)));
  auto channel = env.Channel(backends, PollConfig(c.policy));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"hp-0", "hp-1", "hp-2"}));
  // Every poll succeeds: nothing fails, everyone gets calls.
  testing::Tally healthy = testing::CallMany(*stub, 90);
  EXPECT_EQ(healthy.failed(), 0) << healthy.first_error;
  EXPECT_EQ(healthy.per_backend.size(), 3u);

  backends[0]->Signal(SIGUSR1);  // NOT_SERVING
  const auto flipped = Clock::now();
  ASSERT_TRUE(testing::CallUntil(*stub, 30, [](const testing::Tally& t) {
    return t.per_backend.count("hp-0") == 0 && t.failed() == 0;
  }));
  const double out_ms = std::chrono::duration<double, std::milli>(Clock::now() - flipped).count();
  // Nothing fails while it is out.
  testing::Tally tally = testing::CallMany(*stub, 300);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend.count("hp-0"), 0u);

  backends[0]->Signal(SIGUSR2);  // SERVING
  const auto restored = Clock::now();
  ASSERT_TRUE(testing::CallUntil(*stub, 30, [](const testing::Tally& t) {
    return t.per_backend.count("hp-0") > 0;
  }));
  const double back_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - restored).count();
  printf("%s over %s, polls every 200 ms: out %.0f ms after NOT_SERVING (3 polls: 400-600 ms "
         "expected), back %.0f ms after SERVING (2 polls: 200-400 ms expected)\n",
         c.policy, TransportName(c.transport).c_str(), out_ms, back_ms);
}

INSTANTIATE_TEST_SUITE_P(
    PoliciesAndTransports, HealthPollE2E,
    ::testing::Values(PollCase{"lbkit_round_robin", Transport::kPlaintext},
                      PollCase{"lbkit_least_request", Transport::kPlaintext},
                      PollCase{"lbkit_round_robin", Transport::kTls},
                      PollCase{"lbkit_least_request", Transport::kTls},
                      PollCase{"lbkit_round_robin", Transport::kMutualTls},
                      PollCase{"lbkit_ring_hash", Transport::kMutualTls}),
    [](const auto& info) {
      return absl::StrCat(info.param.policy, "_", TransportName(info.param.transport));
    });

class HealthCheckE2E : public ::testing::TestWithParam<Transport> {};

TEST_P(HealthCheckE2E, AServerWithoutAHealthServiceIsHealthy) {
  TransportEnv env(GetParam());
  Backends backends;
  backends.push_back(env.Start("nohealth-0", {"--health_service=false"}));
  backends.push_back(env.Start("nohealth-1", {"--health_service=false"}));
  auto channel = env.Channel(backends, PollConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"nohealth-0", "nohealth-1"}));
  testing::Tally tally = testing::CallMany(*stub, 100);
  EXPECT_EQ(tally.per_backend["nohealth-0"], 50);
  EXPECT_EQ(tally.per_backend["nohealth-1"], 50);
}

TEST_P(HealthCheckE2E, WatchModeFromThePolicyConfig) {
  TransportEnv env(GetParam());
  Backends backends;
  for (int i = 0; i < 2; ++i) backends.push_back(env.Start(absl::StrCat("hw-", i)));
  // No top-level healthCheckConfig: the policy's own healthCheck asks for
  // gRPC's streaming Watch.
  auto channel = env.Channel(
      backends, R"({"loadBalancingConfig": [{"lbkit_round_robin": {"healthCheck": {}}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"hw-0", "hw-1"}));
  backends[1]->Signal(SIGUSR1);
  EXPECT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("hw-1") == 0 && t.failed() == 0;
  }));
}

INSTANTIATE_TEST_SUITE_P(Transports, HealthCheckE2E,
                         ::testing::Values(Transport::kPlaintext, Transport::kTls,
                                           Transport::kMutualTls),
                         [](const auto& info) { return TransportName(info.param); });

}  // namespace
}  // namespace lbkit
