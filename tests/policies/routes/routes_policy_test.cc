// lbkit_routes against a fake helper: the first matching route wins
// (headers exact/prefix/regex, withoutHeaders, the method path with
// ignoreCase), each route's weighted split, fault aborts, no route ->
// UNIMPLEMENTED, one subchannel per endpoint however many routes use its
// subset, and config errors by field.

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "common/server_address_attributes.h"
#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::FakeMetadata;
using testing::MakeAddress;
using testing::ParseConfig;
using testing::PolicyHarness;

// bookinfo's reviews: one pod per version.
grpc_core::ServerAddressList Reviews() {
  grpc_core::ServerAddressList out;
  for (const auto& [address, version] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1:9081", "v1"}, {"127.0.0.1:9082", "v2"}, {"127.0.0.1:9083", "v3"}}) {
    internal::EndpointAttributes attrs;
    attrs.labels["version"] = version;
    out.push_back(internal::WithEndpointAttributes(MakeAddress(address), attrs));
  }
  return out;
}

std::string Version(const std::string& address) {
  if (address == "127.0.0.1:9081") return "v1";
  if (address == "127.0.0.1:9082") return "v2";
  if (address == "127.0.0.1:9083") return "v3";
  return address.empty() ? "none" : address;
}

// virtual-service-reviews-jason-v2-v3.yaml, as lbkit-istio writes it, with
// a method route and a fault added.
constexpr char kJason[] = R"({
  "subsets": [{"name": "v1", "labels": {"version": "v1"}},
              {"name": "v2", "labels": {"version": "v2"}},
              {"name": "v3", "labels": {"version": "v3"}}],
  "routes": [
    {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
     "split": [{"subset": "v2", "weight": 100}]},
    {"name": "ratings-admin", "match": [{"method": {"prefix": "/bookinfo.admin."}, "ignoreCase": true}],
     "abort": {"percentage": 100, "code": "PERMISSION_DENIED"}},
    {"name": "testers", "match": [{"headers": {"end-user": {"regex": "test-[0-9]+"}}},
                                  {"headers": {"x-canary": {"prefix": "yes"}}}],
     "split": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50}]},
    {"name": "no-user", "match": [{"method": {"exact": "/reviews.Reviews/List"},
                                   "withoutHeaders": {"end-user": {"present": true}}}],
     "split": [{"subset": "v1", "weight": 1}]},
    {"name": "default", "split": [{"subset": "v3", "weight": 100}]}]})";

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.Update(Reviews(), kJason).ok());
    for (const auto& a : {"127.0.0.1:9081", "127.0.0.1:9082", "127.0.0.1:9083"}) {
      h_.SetState(a, GRPC_CHANNEL_READY);
    }
  }
  std::string Pick(std::map<std::string, std::string> headers,
                   absl::string_view path = "/reviews.Reviews/Get",
                   LoadBalancingPolicy::PickResult* result = nullptr) {
    FakeMetadata metadata(std::move(headers));
    return Version(h_.Pick(result, &metadata, path));
  }
  PolicyHarness h_{"lbkit_routes"};
};

TEST_F(RoutesTest, TheFirstMatchingRouteWins) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Pick({{"end-user", "jason"}}), "v2");
    EXPECT_EQ(Pick({{"end-user", "alice"}}), "v3");
    EXPECT_EQ(Pick({}), "v3");
    // Matching is exact: neither "Jason" nor "jason2".
    EXPECT_EQ(Pick({{"end-user", "Jason"}}), "v3");
    EXPECT_EQ(Pick({{"end-user", "jason2"}}), "v3");
  }
  // A regex matches the whole value; matches in one list are alternatives.
  std::map<std::string, int> testers;
  for (int i = 0; i < 100; ++i) {
    ++testers[Pick({{"end-user", "test-42"}})];
    EXPECT_EQ(Pick({{"end-user", "xtest-42"}}), "v3");
  }
  EXPECT_EQ(testers, (std::map<std::string, int>{{"v1", 50}, {"v2", 50}}));
  EXPECT_EQ(Pick({{"x-canary", "yes-please"}}) == "v3", false);
  // withoutHeaders: the route takes List calls that carry no end-user.
  EXPECT_EQ(Pick({}, "/reviews.Reviews/List"), "v1");
  EXPECT_EQ(Pick({{"end-user", "alice"}}, "/reviews.Reviews/List"), "v3");
}

TEST_F(RoutesTest, AFaultAbortFailsTheCallWithItsStatus) {
  LoadBalancingPolicy::PickResult result;
  // ignoreCase: the prefix matches whatever the case of the path.
  EXPECT_EQ(Pick({}, "/BookInfo.Admin.Ratings/Reset", &result), "none");
  auto* drop = absl::get_if<LoadBalancingPolicy::PickResult::Drop>(&result.result);
  ASSERT_NE(drop, nullptr);
  EXPECT_EQ(drop->status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(drop->status.message(), "lbkit_routes: fault injected by route \"ratings-admin\"");
}

TEST_F(RoutesTest, EverySubsetKeepsOneSubchannelPerEndpoint) {
  // v1 and v2 are used by two routes each: still one subchannel per address.
  std::map<std::string, int> per_address;
  for (const auto& s : h_.record().created) ++per_address[s->address()];
  EXPECT_EQ(per_address, (std::map<std::string, int>{
                             {"127.0.0.1:9081", 1}, {"127.0.0.1:9082", 1}, {"127.0.0.1:9083", 1}}));
}

TEST(Routes, NoMatchingRouteIsUnimplementedAndAnEmptyRouteFails) {
  PolicyHarness h("lbkit_routes");
  // The v4 subset has no endpoint, which the update reports as an error.
  const absl::Status update = h.Update(Reviews(), R"({
    "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                {"name": "v4", "labels": {"version": "v4"}}],
    "routes": [{"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                "split": [{"subset": "v4", "weight": 1}]},
               {"match": [{"method": {"prefix": "/reviews."}}],
                "split": [{"subset": "v1", "weight": 1}]}]})");
  EXPECT_TRUE(absl::StrContains(update.ToString(), "v4")) << update;
  h.SetState("127.0.0.1:9081", GRPC_CHANNEL_READY);
  LoadBalancingPolicy::PickResult result;
  FakeMetadata none;
  EXPECT_EQ(h.Pick(&result, &none, "/other.Service/Call"), "");
  auto* drop = absl::get_if<LoadBalancingPolicy::PickResult::Drop>(&result.result);
  ASSERT_NE(drop, nullptr);
  EXPECT_EQ(drop->status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(h.Pick(&result, &none, "/reviews.Reviews/Get"), "127.0.0.1:9081");
  // jason's route has no endpoint at all: its calls fail, the others do not.
  FakeMetadata jason(std::map<std::string, std::string>{{"end-user", "jason"}});
  EXPECT_EQ(h.Pick(&result, &jason, "/reviews.Reviews/Get"), "");
  auto* fail = absl::get_if<LoadBalancingPolicy::PickResult::Fail>(&result.result);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->status.code(), absl::StatusCode::kUnavailable);
}

// Istio's header presence ({} / regex "*": "present": true) and its
// withoutHeaders, which reads a missing header as "".
TEST(Routes, PresenceAndWithoutHeadersFollowEnvoy) {
  PolicyHarness h("lbkit_routes");
  ASSERT_TRUE(h.Update(Reviews(), R"({
    "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
                {"name": "v3", "labels": {"version": "v3"}}],
    "routes": [{"match": [{"headers": {"x-debug": {"present": true}}}],
                "split": [{"subset": "v1", "weight": 1}]},
               {"match": [{"withoutHeaders": {"x-tier": {"regex": ".*"}}}],
                "split": [{"subset": "v2", "weight": 1}]},
               {"split": [{"subset": "v3", "weight": 1}]}]})")
                  .ok());
  for (const auto& a : {"127.0.0.1:9081", "127.0.0.1:9082", "127.0.0.1:9083"}) {
    h.SetState(a, GRPC_CHANNEL_READY);
  }
  auto pick = [&](std::map<std::string, std::string> headers) {
    FakeMetadata metadata(std::move(headers));
    return Version(h.Pick(nullptr, &metadata));
  };
  EXPECT_EQ(pick({{"x-debug", ""}}), "v1");  // present, even empty
  // ".*" matches "" too: a missing x-tier is not "without" it.
  EXPECT_EQ(pick({}), "v3");
  EXPECT_EQ(pick({{"x-tier", "gold"}}), "v3");
}

TEST(RoutesConfig, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"subsets": [{"name": "v1"}], "routes": []})",
       "[field:routes error:must list at least one route]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"split": [{"subset": "v9", "weight": 1}]}]})",
       "[field:routes[0].split[0].subset error:\"v9\" is not in subsets]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"match": [{"headers": {"u": {"regex": "("}}}],
           "split": [{"subset": "v1", "weight": 1}]}]})",
       "[field:routes[0].match[0].headers.u.regex error:is not an RE2 regular expression: "
       "missing ): (]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"match": [{"method": {"exact": "/a", "prefix": "/"}}],
           "split": [{"subset": "v1", "weight": 0}]}]})",
       "[field:routes[0].match[0].method.prefix error:only one of exact, prefix, regex, present "
       "may be set]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"split": [{"subset": "v1", "weight": 0}]}]})",
       "[field:routes[0].split error:weights must not all be 0]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"abort": {"percentage": 150, "code": "NOPE"}}]})",
       "[field:routes[0].abort.code error:is not a gRPC status code name other than OK (e.g. "
       "UNAVAILABLE); field:routes[0].abort.percentage error:must be in [0, 100]]"},
      {R"({"subsets": [{"name": "v1"}], "routes": [{"mirror": {}}]})",
       "[field:routes[0].mirror error:is not name, match, abort or split; field:routes[0].split "
       "error:missing (only a route that aborts every call may omit it)]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig("lbkit_routes", c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(std::string(config.status().message()),
              std::string("errors validating lbkit_routes LB policy config: ") + c.message)
        << c.json;
  }
  EXPECT_TRUE(ParseConfig("lbkit_routes", kJason).ok());
}

}  // namespace
}  // namespace lbkit
