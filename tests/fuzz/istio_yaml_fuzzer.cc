// Fuzzes lbkit-istio's YAML translation. The property that matters to a
// user: whatever TranslateIstio accepts, it turns into a service config a
// channel accepts (a translation that a channel then rejects would fail
// every RPC of a service that "translated fine").

#include <cstddef>
#include <cstdint>
#include <string>

#include "lbkit/channel.h"
#include "lbkit/istio.h"
#include "lbkit/lbkit.h"
#include "tests/fuzz/fuzz_support.h"

const char lbkit::fuzz::kFuzzerName[] = "istio_yaml_fuzzer";
using lbkit::fuzz::Fail;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lbkit::fuzz::InitLbkit();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto translation = lbkit::TranslateIstio(yaml);
  if (!translation.ok()) {
    if (translation.status().code() != absl::StatusCode::kInvalidArgument ||
        translation.status().message().empty()) {
      Fail("a rejection is not INVALID_ARGUMENT with a message", yaml,
           translation.status().ToString());
    }
    return 0;
  }
  const absl::Status valid = lbkit::ValidateServiceConfig(translation->service_config);
  if (!valid.ok()) {
    Fail("accepted YAML translated to a config a channel rejects", yaml,
         translation->service_config + "\n" + valid.ToString());
  }
  return 0;
}
