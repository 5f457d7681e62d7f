// Bad request metadata through a hashing policy, end to end: what a caller
// gets back, and that the channel is unharmed afterwards. docs/bad-input.md
// lists these with the rest of the bad-input tour.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;

class BadInputE2E : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) backends_.push_back(BackendProcess::Start(absl::StrCat("h", i)));
    channel_ = testing::MakeChannel(
        testing::Ipv4Target(backends_),
        absl::StrCat(R"({"loadBalancingConfig":[{")", GetParam(),
                     R"(":{"requestHashHeader":"x-user-id"}}]})"));
    stub_ = examples::Greeter::NewStub(channel_);
    ASSERT_TRUE(testing::WaitForBackends(*stub_, {"h0", "h1", "h2"}));
  }

  grpc::Status CallWithKey(const std::string& key, std::string* backend = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata("x-user-id", key);
    examples::HelloRequest request;
    examples::HelloReply reply;
    grpc::Status status = stub_->SayHello(&context, request, &reply);
    if (backend != nullptr) *backend = reply.backend();
    return status;
  }

  // The channel still hashes: one key, one backend, every time.
  void ExpectChannelUnharmed() {
    std::string first, again;
    ASSERT_TRUE(CallWithKey("user-7", &first).ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(CallWithKey("user-7", &again).ok());
      EXPECT_EQ(again, first);
    }
  }

  std::vector<std::unique_ptr<BackendProcess>> backends_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<examples::Greeter::Stub> stub_;
};

// A 1 MB hash key: lbkit hashes it like any other (the pick happens before
// the transport's size limit applies); the server's metadata limit (gRPC's
// default, 8 KB soft / 16 KB hard) refuses the call with RESOURCE_EXHAUSTED
// and closes that connection, so other calls on it at that moment fail
// UNAVAILABLE ("Socket closed", retryable). The channel reconnects; keys
// within the limit hash as before.
TEST_P(BadInputE2E, HugeHashHeader) {
  const grpc::Status status = CallWithKey(std::string(1 << 20, 'k'));
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  ASSERT_TRUE(testing::WaitForBackends(*stub_, {"h0", "h1", "h2"}));
  const std::string big(4096, 'u');
  std::string first, again;
  grpc::Status ok = CallWithKey(big, &first);
  ASSERT_TRUE(ok.ok()) << ok.error_code() << " " << ok.error_message();
  ok = CallWithKey(big, &again);
  ASSERT_TRUE(ok.ok()) << ok.error_code() << " " << ok.error_message();
  EXPECT_EQ(first, again);
  ExpectChannelUnharmed();
}

// No header: a random endpoint per call (Envoy's behaviour without a hash),
// never a failure. An empty value is a key like any other: one endpoint.
TEST_P(BadInputE2E, MissingOrEmptyHashHeader) {
  testing::Tally tally = testing::CallMany(*stub_, 60);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_GE(tally.per_backend.size(), 2u);
  std::map<std::string, int> with_empty;
  for (int i = 0; i < 60; ++i) {
    std::string backend;
    ASSERT_TRUE(CallWithKey("", &backend).ok());
    ++with_empty[backend];
  }
  EXPECT_EQ(with_empty.size(), 1u);
  ExpectChannelUnharmed();
}

INSTANTIATE_TEST_SUITE_P(Policies, BadInputE2E,
                         ::testing::Values("lbkit_ring_hash", "lbkit_maglev"));

// Bytes that are not legal in an HTTP/2 header value (invalid UTF-8, control
// characters): grpc++ aborts the calling process ("API misuse", an assertion
// in call_op_set.h) before the call reaches the channel, so no lbkit code
// runs. Shown here so that the bad-input tour is honest about it; a caller
// with arbitrary bytes must use a "-bin" header (base64 on the wire).
TEST(BadInputDeathTest, InvalidHeaderBytesAbortInGrpcBeforeAnyPick) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto channel = testing::MakeChannel(
            "ipv4:127.0.0.1:1",
            R"({"loadBalancingConfig":[{"lbkit_ring_hash":{"requestHashHeader":"x-user-id"}}]})");
        auto stub = examples::Greeter::NewStub(channel);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
        context.AddMetadata("x-user-id", "\xff\xfe\xfd");
        examples::HelloRequest request;
        examples::HelloReply reply;
        stub->SayHello(&context, request, &reply).ok();
      },
      "GRPC_CALL_ERROR_INVALID_METADATA");
}

}  // namespace
}  // namespace lbkit
