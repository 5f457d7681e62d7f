// lbkit-istio: Istio DestinationRule / VirtualService YAML in, the gRPC
// service config JSON that does the same with lbkit out.
//
//   lbkit-istio reviews.yaml > service_config.json
//   kubectl get dr,vs -o yaml | lbkit-istio --host=reviews.default.svc.cluster.local
//   lbkit-istio --port=9080 --channel-args reviews.yaml   # name=value per line
//
// The JSON goes to stdout; every field that could not be carried over goes
// to stderr as a warning with the reason. Exit code 0, or 2 on bad input
// (the error names the document and the path).

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lbkit/istio.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

int main(int argc, char** argv) {
  lbkit::IstioOptions options;
  std::string file;
  bool channel_args = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--host=", 0) == 0) {
      options.host = arg.substr(7);
    } else if (arg.rfind("--port=", 0) == 0) {
      if (!absl::SimpleAtoi(arg.substr(7), &options.port) || options.port < 1 ||
          options.port > 65535) {
        std::cerr << "lbkit-istio: --port wants a port number (1-65535), not \"" << arg.substr(7)
                  << "\"\n";
        return 2;
      }
    } else if (arg == "--channel-args") {
      channel_args = true;
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: lbkit-istio [--host=HOST] [--port=PORT] [--channel-args] [FILE.yaml]\n"
                   "  reads stdin without FILE; prints the service config JSON, or with\n"
                   "  --channel-args the channel arguments (name=value per line)\n";
      return 0;
    } else if (file.empty() && arg.rfind("--", 0) != 0) {
      file = arg;
    } else {
      std::cerr << "lbkit-istio: unexpected argument \"" << arg << "\"; see --help\n";
      return 2;
    }
  }
  std::stringstream input;
  if (file.empty() || file == "-") {
    input << std::cin.rdbuf();
  } else {
    std::ifstream in(file);
    if (!in) {
      std::cerr << "lbkit-istio: cannot read " << file << "\n";
      return 2;
    }
    input << in.rdbuf();
  }
  auto result = lbkit::TranslateIstio(input.str(), options);
  if (!result.ok()) {
    std::cerr << "lbkit-istio: " << result.status().message() << "\n";
    return 2;
  }
  for (const std::string& w : result->warnings) std::cerr << "lbkit-istio: warning: " << w << "\n";
  if (channel_args) {
    for (const auto& [name, value] : result->channel_args) std::cout << name << "=" << value << "\n";
  } else {
    std::cout << result->service_config << "\n";
  }
  return 0;
}
