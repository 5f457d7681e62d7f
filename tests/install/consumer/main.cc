// Registers lbkit, then runs a channel whose service config names
// lbkit_round_robin: the policy must be known to gRPC (the config parses)
// and the call must fail only because nothing listens on the address.

#include <grpcpp/grpcpp.h>
#include <grpcpp/generic/generic_stub.h>

#include <future>
#include <iostream>
#include <string>

#include "lbkit/istio.h"
#include "lbkit/lbkit.h"
#include "lbkit/stats.h"
#include "lbkit/version.h"

int main() {
  absl::Status registered = lbkit::RegisterAll();
  if (!registered.ok()) {
    std::cerr << "RegisterAll: " << registered << "\n";
    return 1;
  }
  // The service config comes from Istio YAML through the installed
  // lbkit::istio library.
  auto translated = lbkit::TranslateIstio(
      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
      "spec: {host: probe, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}\n");
  if (!translated.ok()) {
    std::cerr << "TranslateIstio: " << translated.status() << "\n";
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(translated->service_config);
  // Port 1 on loopback: nothing listens there.
  auto channel = grpc::CreateCustomChannel(
      "ipv4:127.0.0.1:1", grpc::InsecureChannelCredentials(), args);
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/lbkit.Consumer/Probe", grpc::StubOptions(),
                 &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  // An unknown policy would fail with INVALID_ARGUMENT ("... no known
  // policies"); a working one reports the connection failure.
  if (lbkit::DumpState().find("lbkit_round_robin") == std::string::npos) {
    std::cerr << "DumpState does not show the channel's policy: " << lbkit::DumpState() << "\n";
    return 1;
  }
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "unexpected status " << status.error_code() << ": "
              << status.error_message() << "\n";
    return 1;
  }
  // The installed version header and the library come from one version.
  if (std::string(lbkit::Version()) != LBKIT_VERSION_STRING) {
    std::cerr << "lbkit::Version() " << lbkit::Version() << " but lbkit/version.h says "
              << LBKIT_VERSION_STRING << "\n";
    return 1;
  }
  std::cout << "lbkit " << lbkit::Version() << " consumer OK: "
            << status.error_message() << "\n";
  return 0;
}
