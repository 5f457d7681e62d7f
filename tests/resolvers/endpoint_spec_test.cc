// The lbkit-static endpoint syntax: what parses, and the exact error for
// each malformed input.

#include "common/server_address_attributes.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lbkit::resolvers {
namespace {

TEST(EndpointSpec, ParsesAddressLocalityWeightAndLabels) {
  auto specs = ParseEndpointList(
      "127.0.0.1:50051;locality=us-west1/us-west1-a;weight=3;label.version=v1;"
      "label.track=canary,[::1]:50052,localhost:50053;locality=eu");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 3u);
  const EndpointSpec& a = (*specs)[0];
  EXPECT_EQ(a.address, "127.0.0.1:50051");
  EXPECT_EQ(a.attributes.locality.region, "us-west1");
  EXPECT_EQ(a.attributes.locality.zone, "us-west1-a");
  EXPECT_EQ(a.attributes.locality.sub_zone, "");
  EXPECT_EQ(a.attributes.weight, 3u);
  EXPECT_EQ(a.attributes.labels,
            (std::map<std::string, std::string>{{"track", "canary"}, {"version", "v1"}}));
  EXPECT_EQ((*specs)[1].address, "[::1]:50052");
  EXPECT_EQ((*specs)[1].attributes.weight, 1u);  // default
  EXPECT_EQ((*specs)[2].attributes.locality.ToString(), "eu//");
  EXPECT_TRUE(ParseEndpointList("").ok());
}

TEST(EndpointSpec, ErrorsNameTheEndpointAndTheProblem) {
  struct Case {
    const char* list;
    const char* message;
  };
  const Case cases[] = {
      {"127.0.0.1", "endpoint 1 (\"127.0.0.1\"): address \"127.0.0.1\" has no port"},
      {"127.0.0.1:1,127.0.0.1:x",
       "endpoint 2 (\"127.0.0.1:x\"): address \"127.0.0.1:x\": port \"x\" is not a "
       "number in [1, 65535]"},
      {"127.0.0.1:70000",
       "endpoint 1 (\"127.0.0.1:70000\"): address \"127.0.0.1:70000\": port "
       "\"70000\" is not a number in [1, 65535]"},
      {"::1:5", "endpoint 1 (\"::1:5\"): address \"::1:5\": write IPv6 addresses as "
                "[addr]:port"},
      {"[::1:5", "endpoint 1 (\"[::1:5\"): address \"[::1:5\" has no closing ']'"},
      {":5", "endpoint 1 (\":5\"): address \":5\" has no host"},
      {"127.0.0.1:5;weight=0",
       "endpoint 1 (\"127.0.0.1:5;weight=0\"): weight must be an integer in [1, "
       "2147483647], got \"0\""},
      {"127.0.0.1:5;weight=-2",
       "endpoint 1 (\"127.0.0.1:5;weight=-2\"): weight must be an integer in [1, "
       "2147483647], got \"-2\""},
      {"127.0.0.1:5;weight=2147483648",
       "endpoint 1 (\"127.0.0.1:5;weight=2147483648\"): weight must be an integer "
       "in [1, 2147483647], got \"2147483648\""},
      {"127.0.0.1:5;locality=a/b/c/d",
       "endpoint 1 (\"127.0.0.1:5;locality=a/b/c/d\"): locality \"a/b/c/d\" is not "
       "region[/zone[/subZone]]"},
      {"127.0.0.1:5;color=red",
       "endpoint 1 (\"127.0.0.1:5;color=red\"): unknown attribute \"color\" (keys: "
       "locality, weight, label.NAME)"},
      {"127.0.0.1:5;weight",
       "endpoint 1 (\"127.0.0.1:5;weight\"): attribute \"weight\" is not key=value "
       "(keys: locality, weight, label.NAME)"},
      {"127.0.0.1:5;weight=1;weight=2",
       "endpoint 1 (\"127.0.0.1:5;weight=1;weight=2\"): attribute \"weight\" is "
       "given twice"},
      {"127.0.0.1:5,127.0.0.1:6,127.0.0.1:5;weight=2",
       "endpoint 3 (\"127.0.0.1:5;weight=2\"): address 127.0.0.1:5 is already "
       "endpoint 1"},
  };
  for (const Case& c : cases) {
    auto specs = ParseEndpointList(c.list);
    ASSERT_FALSE(specs.ok()) << c.list;
    EXPECT_EQ(specs.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(specs.status().message()), c.message);
  }
}

TEST(EndpointSpec, ServerAddressesCarryTheAttributes) {
  auto specs = ParseEndpointList(
      "127.0.0.1:50051;weight=5;locality=r/z;label.version=v2,[::1]:50052");
  ASSERT_TRUE(specs.ok());
  auto addresses = ToServerAddresses(*specs);
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_EQ(addresses->size(), 2u);
  EXPECT_EQ(*grpc_sockaddr_to_string(&(*addresses)[0].address(), false),
            "127.0.0.1:50051");
  EXPECT_EQ(*grpc_sockaddr_to_string(&(*addresses)[1].address(), false),
            "[::1]:50052");
  const internal::EndpointAttributes* attrs = internal::GetEndpointAttributes((*addresses)[0]);
  ASSERT_NE(attrs, nullptr);
  EXPECT_EQ(attrs->weight, 5u);
  EXPECT_EQ(attrs->locality.ToString(), "r/z/");
  EXPECT_EQ(attrs->labels.at("version"), "v2");
  EXPECT_EQ(internal::EndpointWeight((*addresses)[0]), 5u);
  EXPECT_EQ(internal::EndpointWeight((*addresses)[1]), 1u);
  // Same spec, same attributes: equal addresses, so an endpoint is kept
  // across updates; a changed weight makes a different one.
  auto again = ToServerAddresses(*specs);
  EXPECT_TRUE((*again)[0] == (*addresses)[0]);
  (*specs)[0].attributes.weight = 6;
  auto reweighted = ToServerAddresses(*specs);
  EXPECT_FALSE((*reweighted)[0] == (*addresses)[0]);
}

}  // namespace
}  // namespace lbkit::resolvers
