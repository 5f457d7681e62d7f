// Istio's bookinfo rules, verbatim from tests/istio/corpus (istio/istio's
// samples/bookinfo/networking), through lbkit::TranslateIstio against real
// greeter servers labelled v1/v2/v3 on loopback: the end-user: jason route,
// the 80/20 and 50/50 splits, and the fault abort of ratings.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "lbkit/istio.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;

std::string Corpus(const std::string& name) {
  std::ifstream in(std::string(LBKIT_ISTIO_CORPUS_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_FALSE(s.str().empty()) << name;
  return s.str();
}

class Bookinfo : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> entries;
    for (const char* version : {"v1", "v2", "v3"}) {
      backends_.push_back(BackendProcess::Start(absl::StrCat(version, "-0")));
      entries.push_back(absl::StrCat(backends_.back()->address(), ";label.version=", version));
    }
    target_ = "lbkit-static:///" + absl::StrJoin(entries, ",");
  }

  // A stub whose channel runs what lbkit-istio makes of `file` for `host`.
  std::unique_ptr<examples::Greeter::Stub> Stub(const std::string& file, const std::string& host) {
    IstioOptions options;
    options.host = host;
    auto translated = TranslateIstio(Corpus(file), options);
    EXPECT_TRUE(translated.ok()) << translated.status();
    if (!translated.ok()) return nullptr;
    grpc::ChannelArguments args;
    translated->ApplyTo(&args);
    auto channel = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    return examples::Greeter::NewStub(channel);
  }

  // n calls as `user` (none when empty): calls per backend, and failures
  // by status code under "error:CODE".
  static std::map<std::string, int> Calls(examples::Greeter::Stub& stub, int n,
                                          const std::string& user) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      context.set_wait_for_ready(true);
      if (!user.empty()) context.AddMetadata("end-user", user);
      examples::HelloRequest request;
      examples::HelloReply reply;
      const grpc::Status status = stub.SayHello(&context, request, &reply);
      ++out[status.ok() ? reply.backend() : absl::StrCat("error:", status.error_code())];
    }
    return out;
  }

  std::vector<std::unique_ptr<BackendProcess>> backends_;
  std::string target_;
};

// virtual-service-reviews-jason-v2-v3.yaml: jason to v2, everyone else to v3.
TEST_F(Bookinfo, JasonReachesV2AndEveryoneElseV3) {
  auto stub = Stub("06_bookinfo_vs_reviews_jason_v2_v3.yaml", "reviews");
  ASSERT_NE(stub, nullptr);
  EXPECT_EQ(Calls(*stub, 1000, "jason"), (std::map<std::string, int>{{"v2-0", 1000}}));
  EXPECT_EQ(Calls(*stub, 1000, ""), (std::map<std::string, int>{{"v3-0", 1000}}));
  EXPECT_EQ(Calls(*stub, 1000, "alice"), (std::map<std::string, int>{{"v3-0", 1000}}));
}

// virtual-service-reviews-test-v2.yaml: jason to v2, everyone else to v1.
TEST_F(Bookinfo, TestV2SendsOnlyJasonToV2) {
  auto stub = Stub("05_bookinfo_vs_reviews_test_v2.yaml", "reviews");
  ASSERT_NE(stub, nullptr);
  EXPECT_EQ(Calls(*stub, 500, "jason"), (std::map<std::string, int>{{"v2-0", 500}}));
  EXPECT_EQ(Calls(*stub, 500, "bob"), (std::map<std::string, int>{{"v1-0", 500}}));
}

// virtual-service-reviews-80-20.yaml and virtual-service-reviews-50-v3.yaml
// over 10,000 calls: within 2 points of the weights.
TEST_F(Bookinfo, WeightedSplitsHoldOverTenThousandCalls) {
  struct Case {
    const char* file;
    std::map<std::string, double> percent;
  };
  for (const Case& c : {Case{"07_bookinfo_vs_reviews_80_20.yaml", {{"v1-0", 80}, {"v2-0", 20}}},
                        Case{"08_bookinfo_vs_reviews_50_v3.yaml", {{"v1-0", 50}, {"v3-0", 50}}}}) {
    SCOPED_TRACE(c.file);
    auto stub = Stub(c.file, "reviews");
    ASSERT_NE(stub, nullptr);
    const std::map<std::string, int> calls = Calls(*stub, 10000, "");
    std::map<std::string, double> got;
    for (const auto& [backend, n] : calls) got[backend] = 100.0 * n / 10000;
    printf("%s: %s\n", c.file,
           absl::StrJoin(got, ", ", absl::PairFormatter(": ")).c_str());
    ASSERT_EQ(got.size(), c.percent.size()) << absl::StrJoin(got, ", ", absl::PairFormatter(":"));
    for (const auto& [backend, percent] : c.percent) EXPECT_NEAR(got[backend], percent, 2.0);
  }
}

// virtual-service-ratings-test-abort.yaml: jason's calls fail (HTTP 500 is
// UNKNOWN to a gRPC client) at pick time, without reaching a server;
// everyone else's reach v1.
TEST_F(Bookinfo, FaultAbortFailsJasonsCallsOnly) {
  auto stub = Stub("13_bookinfo_vs_ratings_test_abort.yaml", "ratings");
  ASSERT_NE(stub, nullptr);
  EXPECT_EQ(Calls(*stub, 500, ""), (std::map<std::string, int>{{"v1-0", 500}}));
  EXPECT_EQ(Calls(*stub, 200, "jason"),
            (std::map<std::string, int>{
                {absl::StrCat("error:", grpc::StatusCode::UNKNOWN), 200}}));
}

}  // namespace
}  // namespace lbkit
