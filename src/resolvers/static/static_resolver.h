// lbkit-static: a fixed endpoint list with locality, weight and labels,
// written in the target URI.
//
//   lbkit-static:///127.0.0.1:50051;locality=us-west1/us-west1-a;weight=3;label.version=v1,127.0.0.1:50052
//
// Each endpoint is ADDRESS[;locality=REGION[/ZONE[/SUBZONE]]][;weight=N]
// [;label.KEY=VALUE]...; ADDRESS is IPv4:port, [IPv6]:port or name:port
// (names are resolved once, with the system resolver, when the channel
// starts). A malformed URI fails the channel's RPCs with UNAVAILABLE and a
// message naming the endpoint and the problem.

#ifndef LBKIT_RESOLVERS_STATIC_STATIC_RESOLVER_H_
#define LBKIT_RESOLVERS_STATIC_STATIC_RESOLVER_H_

#include "absl/strings/string_view.h"

namespace lbkit::resolvers {

inline constexpr absl::string_view kStaticScheme = "lbkit-static";

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_STATIC_STATIC_RESOLVER_H_
