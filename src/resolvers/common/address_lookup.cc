#include "resolvers/common/address_lookup.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/server_address_attributes.h"

namespace lbkit::resolvers {

namespace {

absl::Mutex g_lookup_mu;
HostLookup& TestLookup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_lookup_mu) {
  static auto* lookup = new HostLookup();
  return *lookup;
}

}  // namespace

absl::StatusOr<std::vector<grpc_resolved_address>> LookupHost(const std::string& host,
                                                               uint16_t port) {
  if (!IsIpLiteral(host)) {
    HostLookup lookup;
    {
      absl::MutexLock lock(&g_lookup_mu);
      lookup = TestLookup();
    }
    if (lookup) return lookup(host, port);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const std::string port_text = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &result);
  if (rc != 0) return absl::UnavailableError(gai_strerror(rc));
  std::vector<grpc_resolved_address> out;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    grpc_resolved_address resolved{};
    std::memcpy(resolved.addr, ai->ai_addr, ai->ai_addrlen);
    resolved.len = static_cast<socklen_t>(ai->ai_addrlen);
    out.push_back(resolved);
  }
  freeaddrinfo(result);
  return out;
}

absl::StatusOr<grpc_core::ServerAddressList> ToServerAddresses(
    const std::vector<EndpointSpec>& specs) {
  grpc_core::ServerAddressList addresses;
  for (const EndpointSpec& spec : specs) {
    std::string host;
    uint16_t port;
    if (absl::Status s = SplitHostPort(spec.address, &host, &port); !s.ok()) return s;
    auto resolved = LookupHost(host, port);
    if (!resolved.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot resolve ", absl::StrCat("\"", host, "\""),
                                                 " of endpoint ", spec.address, ": ",
                                                 resolved.status().message()));
    }
    for (const grpc_resolved_address& address : *resolved) {
      addresses.push_back(internal::WithEndpointAttributes(
          grpc_core::ServerAddress(address, grpc_core::ChannelArgs()), spec.attributes));
    }
  }
  return addresses;
}

void SetHostLookupForTesting(HostLookup lookup) {
  absl::MutexLock lock(&g_lookup_mu);
  TestLookup() = std::move(lookup);
}

}  // namespace lbkit::resolvers
