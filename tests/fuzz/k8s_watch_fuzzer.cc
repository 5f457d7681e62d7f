// Fuzzes what lbkit-k8s reads from the API server: a watch stream split at
// any byte (the first input byte picks the split), each event's object read
// as a Service, EndpointSlice, Pod, Node and Status, and endpoint selection
// over what parsed. Checks: a line is an event or an error with a message;
// every selected endpoint is "IP:port" or "[IP]:port" with a port in range.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "resolvers/k8s/kube_objects.h"
#include "resolvers/k8s/watch_stream.h"
#include "tests/fuzz/fuzz_support.h"

const char lbkit::fuzz::kFuzzerName[] = "k8s_watch_fuzzer";
using lbkit::fuzz::Fail;
namespace k8s = lbkit::resolvers::k8s;

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t split = data[0] % (text.size() + 1);
  k8s::ServiceState state;
  k8s::WatchStream stream;
  auto on_event = [&](absl::StatusOr<k8s::WatchEvent> event) {
    if (!event.ok()) {
      if (event.status().message().empty()) Fail("an error without a message", text, "");
      return;
    }
    const nlohmann::json& object = event->object;
    k8s::ParseStatus(object);
    k8s::ParsePodLabels(object).IgnoreError();
    k8s::ParseNode(object).IgnoreError();
    if (auto service = k8s::ParseService(object); service.ok()) state.service = *service;
    if (auto slice = k8s::ParseEndpointSlice(object); slice.ok()) state.slices[slice->name] = *slice;
  };
  stream.Feed(absl::string_view(text).substr(0, split), on_event);
  stream.Feed(absl::string_view(text).substr(split), on_event);
  for (const k8s::K8sTarget& target :
       {k8s::K8sTarget{"s", "default", "grpc", 0}, k8s::K8sTarget{"s", "default", "", 80}}) {
    auto picked = k8s::SelectEndpoints(state, target);
    if (!picked.ok()) continue;
    for (const auto& endpoint : picked->endpoints) {
      const size_t colon = endpoint.address.rfind(':');
      int port = 0;
      if (colon == std::string::npos ||
          !absl::SimpleAtoi(endpoint.address.substr(colon + 1), &port) || port < 1 ||
          port > 65535) {
        Fail("selected an endpoint without a valid port", text, endpoint.address);
      }
    }
  }
  return 0;
}
