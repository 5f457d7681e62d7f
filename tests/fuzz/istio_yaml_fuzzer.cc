// Fuzzes lbkit-istio's YAML translation. The property that matters to a
// user: whatever TranslateIstio accepts, it turns into a service config a
// channel accepts (a translation that a channel then rejects would fail
// every RPC of a service that "translated fine").

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lbkit/channel.h"
#include "lbkit/istio.h"
#include "lbkit/lbkit.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!lbkit::RegisterAll().ok()) abort();
  lbkit::ValidateServiceConfig("{}").IgnoreError();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto translation = lbkit::TranslateIstio(yaml);
  if (!translation.ok()) {
    if (translation.status().code() != absl::StatusCode::kInvalidArgument ||
        translation.status().message().empty()) {
      fprintf(stderr, "istio_yaml_fuzzer: rejection is not INVALID_ARGUMENT with a message: %s\n",
              translation.status().ToString().c_str());
      abort();
    }
    return 0;
  }
  const absl::Status valid = lbkit::ValidateServiceConfig(translation->service_config);
  if (!valid.ok()) {
    fprintf(stderr, "istio_yaml_fuzzer: accepted YAML translated to a config a channel rejects\n"
            "yaml:\n%s\nconfig: %s\nerror: %s\n", yaml.c_str(),
            translation->service_config.c_str(), valid.ToString().c_str());
    abort();
  }
  return 0;
}
