// greeter_control: changes a running greeter_server's behaviour through its
// GreeterControl service, for scripts that inject faults (benchmarks, soak
// tests): a delay, an error rate and code, or its health.
//
//   greeter_control --target=127.0.0.1:50051 --error_rate=1 --error_code=UNAVAILABLE
//   greeter_control --target=127.0.0.1:50051 --serving=false
//
// Prints the behaviour the server has afterwards; exits non-zero if the call
// fails.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "greeter.grpc.pb.h"

ABSL_FLAG(std::string, target, "", "The server, e.g. 127.0.0.1:50051 (required).");
ABSL_FLAG(std::optional<int32_t>, delay_ms, std::nullopt, "Delay added to every SayHello.");
ABSL_FLAG(std::optional<double>, error_rate, std::nullopt,
          "Probability in [0, 1] that a SayHello fails.");
ABSL_FLAG(std::optional<std::string>, error_code, std::nullopt,
          "Status code name of injected failures, e.g. UNAVAILABLE.");
ABSL_FLAG(std::optional<bool>, serving, std::nullopt, "What the health service reports.");
ABSL_FLAG(bool, get, false, "Only read the behaviour (and max_in_flight); change nothing.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Sets a greeter_server's behaviour at run time.");
  if (absl::ParseCommandLine(argc, argv).size() > 1) {
    absl::FPrintF(stderr, "greeter_control: unexpected argument; see --help\n");
    return 2;
  }
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) {
    absl::FPrintF(stderr, "greeter_control: --target is required\n");
    return 2;
  }
  lbkit::examples::Behavior request;
  if (auto v = absl::GetFlag(FLAGS_delay_ms)) request.set_delay_ms(*v);
  if (auto v = absl::GetFlag(FLAGS_error_rate)) request.set_error_rate(*v);
  if (auto v = absl::GetFlag(FLAGS_error_code)) request.set_error_code(*v);
  if (auto v = absl::GetFlag(FLAGS_serving)) request.set_serving(*v);

  auto stub = lbkit::examples::GreeterControl::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  lbkit::examples::Behavior reply;
  const grpc::Status status =
      absl::GetFlag(FLAGS_get)
          ? stub->GetBehavior(&context, lbkit::examples::GetBehaviorRequest(), &reply)
          : stub->SetBehavior(&context, request, &reply);
  if (!status.ok()) {
    absl::FPrintF(stderr, "greeter_control: %s: %s\n", target, status.error_message());
    return 1;
  }
  absl::PrintF("delay_ms=%d error_rate=%g error_code=%s serving=%s max_in_flight=%d\n",
               reply.delay_ms(), reply.error_rate(), reply.error_code(),
               reply.serving() ? "true" : "false", reply.max_in_flight());
  return 0;
}
