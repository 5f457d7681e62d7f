// Fuzzes lbkit-file's endpoints file parser, and the service config a file
// may carry, with the checks the resolver relies on: an accepted file has
// only endpoints with an address and a weight in [1, 2^31-1]; a rejected
// one says why with a field path or the JSON error's position.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "lbkit/channel.h"
#include "lbkit/lbkit.h"
#include "resolvers/file/endpoints_file.h"

namespace {

void Fail(const char* what, const std::string& input, const std::string& detail) {
  fprintf(stderr, "endpoints_file_fuzzer: %s\ninput: %s\ndetail: %s\n", what, input.c_str(),
          detail.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!lbkit::RegisterAll().ok()) abort();
  lbkit::ValidateServiceConfig("{}").IgnoreError();
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
