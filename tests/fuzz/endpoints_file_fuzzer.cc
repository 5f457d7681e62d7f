// Fuzzes lbkit-file's endpoints file parser, and the service config a file
// may carry, with the checks the resolver relies on: an accepted file has
// only endpoints with an address and a weight in [1, 2^31-1]; a rejected
// one is INVALID_ARGUMENT with a message (its exact text is the unit
// tests' business).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "lbkit/channel.h"
#include "lbkit/lbkit.h"
#include "resolvers/file/endpoints_file.h"
#include "tests/fuzz/fuzz_support.h"

const char lbkit::fuzz::kFuzzerName[] = "endpoints_file_fuzzer";
using lbkit::fuzz::Fail;


extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lbkit::fuzz::InitLbkit();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto file = lbkit::resolvers::ParseEndpointsFile(text);
  if (!file.ok()) {
    if (file.status().code() != absl::StatusCode::kInvalidArgument ||
        file.status().message().empty()) {
      Fail("a rejection is not INVALID_ARGUMENT with a message", text,
           file.status().ToString());
    }
    return 0;
  }
  for (const auto& endpoint : file->endpoints) {
    if (endpoint.address.empty()) Fail("accepted an endpoint without address", text, "");
    const uint32_t weight = endpoint.attributes.weight;
    if (weight < 1 || weight > 2147483647u) {
      Fail("accepted a weight out of range", text, std::to_string(weight));
    }
  }
  if (file->service_config_json.has_value()) {
    // What the resolver does next with it; must not crash either.
    lbkit::ValidateServiceConfig(*file->service_config_json).IgnoreError();
  }
  return 0;
}
