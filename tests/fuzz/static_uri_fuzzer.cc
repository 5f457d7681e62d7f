// Fuzzes lbkit-static's endpoint list (the URI path), with the checks the
// resolver relies on: every accepted endpoint's address splits into a host
// and a port in [1, 65535], its weight is in range, and no address appears
// twice; a rejection has a message.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "resolvers/common/endpoint_spec.h"
#include "tests/fuzz/fuzz_support.h"

const char lbkit::fuzz::kFuzzerName[] = "static_uri_fuzzer";
using lbkit::fuzz::Fail;


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
