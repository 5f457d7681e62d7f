// lbkit-etcd's target and key helpers (no etcd needed).

#include "gtest/gtest.h"
#include "resolvers/etcd/etcd_client.h"
#include "resolvers/etcd/etcd_resolver.h"
#include "resolvers/file/endpoints_file.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <map>
#include <string>

namespace lbkit::resolvers {
namespace {

TEST(EtcdTarget, AuthorityAndPrefix) {
  auto t = ParseEtcdTarget("10.0.0.1:2379,etcd-1.internal:2379", "/services/greeter");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->endpoints, "10.0.0.1:2379,etcd-1.internal:2379");
  EXPECT_EQ(t->prefix, "/services/greeter/");  // the trailing "/" added
  t = ParseEtcdTarget("[::1]:2379", "/a/");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->prefix, "/a/");
}

TEST(EtcdTarget, ErrorsSayWhatIsWrong) {
  EXPECT_EQ(ParseEtcdTarget("", "/a").status().message(),
            "the target must be lbkit-etcd://HOST:PORT[,HOST:PORT...]/KEY/PREFIX: no etcd "
            "endpoint given");
  EXPECT_EQ(ParseEtcdTarget("127.0.0.1", "/a").status().message(),
            "etcd endpoint \"127.0.0.1\": address \"127.0.0.1\" has no port");
  EXPECT_EQ(ParseEtcdTarget("127.0.0.1:2379,:x", "/a").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEtcdTarget("127.0.0.1:2379", "/").status().message(),
            "the target must name a key prefix, e.g. "
            "lbkit-etcd://127.0.0.1:2379/services/greeter/");
}

TEST(EtcdKeys, PrefixEndIsTheFirstKeyPastThePrefix) {
  EXPECT_EQ(etcd::PrefixEnd("/services/greeter/"), "/services/greeter0");
  EXPECT_EQ(etcd::PrefixEnd("a\xff"), "b");
  EXPECT_EQ(etcd::PrefixEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdKeys, ChannelTargetResolvesOnceAndNamesTheBadEndpoint) {
  auto target = etcd::EtcdChannelTarget("127.0.0.1:2379,127.0.0.2:2380");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(*target, "ipv4:127.0.0.1:2379,127.0.0.2:2380");
  // One name alone is left to gRPC's DNS resolver, which follows it.
  target = etcd::EtcdChannelTarget("localhost:2379");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(*target, "dns:///localhost:2379");
  target = etcd::EtcdChannelTarget("[::1]:2379");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(*target, "ipv6:[::1]:2379");
  EXPECT_EQ(etcd::EtcdChannelTarget("127.0.0.1:2379,127.0.0.1:0").status().message(),
            "etcd endpoint 2 (\"127.0.0.1:0\"): address \"127.0.0.1:0\": port \"0\" is not a "
            "number in [1, 65535]");
}

TEST(EtcdValues, OneEndpointObject) {
  auto spec = ParseEndpointObject(
      R"({"address":"10.0.0.7:50051","locality":{"region":"r","zone":"a"},"weight":3,
          "labels":{"version":"v2"}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->address, "10.0.0.7:50051");
  EXPECT_EQ(spec->attributes.locality.zone, "a");
  EXPECT_EQ(spec->attributes.weight, 3u);
  EXPECT_EQ(spec->attributes.labels.at("version"), "v2");
  EXPECT_EQ(ParseEndpointObject(R"({"address":"10.0.0.7:50051","weight":0})").status().message(),
            "invalid endpoint: [field:weight error:must be an integer in [1, 2147483647], got 0]");
  EXPECT_FALSE(ParseEndpointObject("not json").ok());
}

}  // namespace
}  // namespace lbkit::resolvers
