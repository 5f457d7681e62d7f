// What a channel does with a malformed service config: its calls fail with
// INVALID_ARGUMENT and nothing crashes; through lbkit::CreateChannel the
// message names the field.

#include <grpcpp/grpcpp.h>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "lbkit/channel.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lbkit {
namespace {

using testing::BackendProcess;

struct BadConfig {
  const char* json;
  const char* message;
};

const BadConfig kBadConfigs[] = {
    {R"({"loadBalancingConfig":[{"lbkit_round_robin":[]}]})",
     "errors validating service config: [field:loadBalancingConfig "
     "error:child entry should be of type object]"},
    {R"({"loadBalancingConfig":[{"lbkit_round_robbin":{}}]})",
     "errors validating service config: [field:loadBalancingConfig "
     "error:No known policies in list: lbkit_round_robbin]"},
    {R"({"loadBalancingConfig":[{"lbkit_round_robin":{}}],)"
     R"("healthCheckConfig":{"serviceName":7}})",
     "errors validating service config: "
     "[field:healthCheckConfig.serviceName error:is not a string]"},
};

TEST(ServiceConfig, ValidateNamesTheField) {
  EXPECT_TRUE(ValidateServiceConfig(testing::LbConfig("lbkit_round_robin")).ok());
  for (const BadConfig& bad : kBadConfigs) {
    absl::Status status = ValidateServiceConfig(bad.json);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.json;
    EXPECT_EQ(status.message(), bad.message) << bad.json;
  }
  EXPECT_EQ(ValidateServiceConfig("{").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServiceConfigE2E, CreateChannelFailsCallsWithTheFieldPath) {
  auto backend = BackendProcess::Start("config-test");
  for (const BadConfig& bad : kBadConfigs) {
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(bad.json);
    auto channel = CreateChannel(absl::StrCat("ipv4:", backend->address()),
                                 grpc::InsecureChannelCredentials(), args);
    auto stub = examples::Greeter::NewStub(channel);
    testing::CallResult r = testing::CallOnce(*stub);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(r.status.error_message(), bad.message);
  }
}

// Plain gRPC keeps the code but drops the message (documented in
// docs/grpc-internals.md); this pins that behaviour so a gRPC upgrade that
// changes it is noticed.
TEST(ServiceConfigE2E, PlainGrpcChannelFailsCallsWithInvalidArgument) {
  auto backend = BackendProcess::Start("config-test");
  auto channel = testing::MakeChannel(absl::StrCat("ipv4:", backend->address()),
                                      kBadConfigs[0].json);
  auto stub = examples::Greeter::NewStub(channel);
  testing::CallResult r = testing::CallOnce(*stub);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), "Failed to create secure client channel");
}

TEST(ServiceConfigE2E, ValidConfigWorksNextToBuiltInPolicies) {
  auto backend = BackendProcess::Start("config-ok");
  for (const char* policy : {"lbkit_round_robin", "round_robin", "pick_first"}) {
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(testing::LbConfig(policy));
    auto channel = CreateChannel(absl::StrCat("ipv4:", backend->address()),
                                 grpc::InsecureChannelCredentials(), args);
    auto stub = examples::Greeter::NewStub(channel);
    testing::CallResult r = testing::CallOnce(*stub, 5000);
    EXPECT_TRUE(r.status.ok()) << policy << ": " << r.status.error_message();
    EXPECT_EQ(r.backend, "config-ok");
  }
}

}  // namespace
}  // namespace lbkit
