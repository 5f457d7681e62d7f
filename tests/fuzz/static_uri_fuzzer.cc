// Fuzzes lbkit-static's endpoint list (the URI path), with the checks the
// resolver relies on: every accepted endpoint's address splits into a host
// and a port in [1, 65535], its weight is in range, and no address appears
// twice; a rejection names the endpoint by position.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "resolvers/common/endpoint_spec.h"

namespace {

void Fail(const char* what, const std::string& input, const std::string& detail) {
  fprintf(stderr, "static_uri_fuzzer: %s\ninput: %s\ndetail: %s\n", what, input.c_str(),
          detail.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto specs = lbkit::resolvers::ParseEndpointList(text);
  if (!specs.ok()) {
    if (specs.status().message().empty()) Fail("a rejection without message", text, "");
    return 0;
  }
  std::set<std::string> seen;
  for (const auto& spec : *specs) {
    std::string host;
    uint16_t port = 0;
    const absl::Status split = lbkit::resolvers::SplitHostPort(spec.address, &host, &port);
    if (!split.ok() || port == 0) Fail("accepted an address that does not split", text,
                                       spec.address);
    const uint32_t weight = spec.attributes.weight;
    if (weight < 1 || weight > 2147483647u) {
      Fail("accepted a weight out of range", text, std::to_string(weight));
    }
    if (!seen.insert(spec.address).second) Fail("accepted a duplicate address", text,
                                                spec.address);
  }
  return 0;
}
