// The lbkit-file endpoints file: what parses, the exact error for each bad
// input, and that random corruption never crashes the parser.

#include "resolvers/file/endpoints_file.h"

#include <cstddef>
#include <map>
#include <memory>
#include <random>

#include "gtest/gtest.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace lbkit::resolvers {
namespace {

constexpr char kValid[] = R"({
  "endpoints": [
    {"address": "127.0.0.1:50051",
     "locality": {"region": "us-west1", "zone": "us-west1-a", "subZone": "rack-1"},
     "weight": 3,
     "labels": {"version": "v1"}},
    {"address": "[::1]:50052"}
  ],
  "serviceConfig": {"loadBalancingConfig": [{"lbkit_round_robin": {}}]}
})";

TEST(EndpointsFile, ParsesEveryField) {
  auto file = ParseEndpointsFile(kValid);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->endpoints.size(), 2u);
  const auto& a = file->endpoints[0].attributes;
  EXPECT_EQ(file->endpoints[0].address, "127.0.0.1:50051");
  EXPECT_EQ(a.locality.ToString(), "us-west1/us-west1-a/rack-1");
  EXPECT_EQ(a.weight, 3u);
  EXPECT_EQ(a.labels.at("version"), "v1");
  EXPECT_EQ(file->endpoints[1].attributes.weight, 1u);
  ASSERT_TRUE(file->service_config_json.has_value());
  EXPECT_EQ(*file->service_config_json,
            R"({"loadBalancingConfig":[{"lbkit_round_robin":{}}]})");
  auto minimal = ParseEndpointsFile(R"({"endpoints": []})");
  ASSERT_TRUE(minimal.ok());
  EXPECT_TRUE(minimal->endpoints.empty());
  EXPECT_FALSE(minimal->service_config_json.has_value());
}

TEST(EndpointsFile, ErrorsNameTheFieldAndTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "the file is empty"},
      {"  \n", "the file is empty"},
      {"{\"endpoints\": [\n  {\"address\": \"127.0.0.1:1\",}\n]}",
       "JSON parsing failed: [JSON parse error at index 44] (line 2, column 29)"},
      {R"({"endpoints": [{"address": "127.0.0.1:1", "weight": -1}]})",
       "invalid endpoints file: [field:endpoints[0].weight error:must be an "
       "integer in [1, 2147483647], got -1]"},
      {R"({"endpoints": [{"address": "127.0.0.1"}, {"weight": 2}]})",
       "invalid endpoints file: [field:endpoints[0].address error:address "
       "\"127.0.0.1\" has no port; field:endpoints[1].address error:field not "
       "present]"},
      {R"({"endpoints": [{"address": "127.0.0.1:1"}, {"address": "127.0.0.1:1"}]})",
       "invalid endpoints file: [field:endpoints[1].address error:duplicate "
       "address 127.0.0.1:1 (also endpoints[0])]"},
      {R"({"endpoints": {}})",
       "invalid endpoints file: [field:endpoints error:is not an array]"},
      {R"({"endpoint": []})",
       "invalid endpoints file: [field:endpoints error:field not present]"},
      {R"({"endpoints": [{"address": "127.0.0.1:1", "labels": {"v": 1}}]})",
       "invalid endpoints file: [field:endpoints[0].labels[\"v\"] error:is not a "
       "string]"},
      {R"({"endpoints": [{"address": "127.0.0.1:1", "weight": 4294967296}]})",
       "invalid endpoints file: [field:endpoints[0].weight error:must be an "
       "integer in [1, 2147483647], got 4294967296]"},
  };
  for (const Case& c : cases) {
    auto file = ParseEndpointsFile(c.text);
    ASSERT_FALSE(file.ok()) << c.text;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(file.status().message()), c.message) << c.text;
  }
}

// 10,000 random mutations of a valid file (byte flips, insertions,
// deletions, truncations): the parser answers each with a value or an
// error, and never crashes (ASan runs this too). Fixed seed.
TEST(EndpointsFile, SurvivesRandomCorruption) {
  std::mt19937_64 rng(20261127);
  const std::string valid = kValid;
  const std::string alphabet = "{}[]\":,0123456789.-e \n\\uabcdefnulltrs";
  int ok = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t pos = rng() % text.size();
      switch (rng() % 4) {
        case 0: text[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 2: text.erase(pos, 1 + rng() % 8); break;
        default: text.resize(pos); break;
      }
    }
    ok += ParseEndpointsFile(text).ok();
  }
  // Some mutations land in strings and stay valid; most do not.
  EXPECT_GT(ok, 0);
  EXPECT_LT(ok, 10000);
}

}  // namespace
}  // namespace lbkit::resolvers
