// Client-side helpers for end-to-end tests: channels with a service config,
// single calls, and bounded loops that count where the calls went.

#ifndef LBKIT_TESTS_SUPPORT_GREETER_CALLS_H_
#define LBKIT_TESTS_SUPPORT_GREETER_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "greeter.grpc.pb.h"

namespace lbkit::testing {

inline std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target, const std::string& service_config,
    grpc::ChannelArguments args = {},
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr) {
  if (!service_config.empty()) args.SetServiceConfigJSON(service_config);
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(target, credentials, args);
}

inline std::string LbConfig(const std::string& policy,
                            const std::string& extra = "") {
  return absl::StrCat(R"({"loadBalancingConfig":[{")", policy, R"(":{}}])",
                      extra, "}");
}

struct CallResult {
  grpc::Status status;
  std::string backend;  // Empty unless status is OK.
};

inline CallResult CallOnce(lbkit::examples::Greeter::Stub& stub,
                           int deadline_ms = 2000) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(deadline_ms));
  lbkit::examples::HelloRequest request;
  request.set_name("test");
  lbkit::examples::HelloReply reply;
  CallResult result;
  result.status = stub.SayHello(&context, request, &reply);
  if (result.status.ok()) result.backend = reply.backend();
  return result;
}

struct Tally {
  std::map<std::string, int> per_backend;
  std::map<grpc::StatusCode, int> errors;
  std::string first_error;
  int ok() const {
    int n = 0;
    for (auto& [_, c] : per_backend) n += c;
    return n;
  }
  int failed() const {
    int n = 0;
    for (auto& [_, c] : errors) n += c;
    return n;
  }
};

// `deadline`, when set, bounds the whole batch: each call's own deadline is
// cut to what is left, and the batch stops early when nothing is.
inline Tally CallMany(lbkit::examples::Greeter::Stub& stub, int n,
                      std::chrono::steady_clock::time_point deadline = {}) {
  Tally tally;
  for (int i = 0; i < n; ++i) {
    int call_ms = 2000;
    if (deadline != std::chrono::steady_clock::time_point{}) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      call_ms = static_cast<int>(std::min<int64_t>(call_ms, left.count()));
    }
    CallResult r = CallOnce(stub, call_ms);
    if (r.status.ok()) {
      ++tally.per_backend[r.backend];
    } else {
      ++tally.errors[r.status.error_code()];
      if (tally.first_error.empty()) tally.first_error = r.status.error_message();
    }
  }
  return tally;
}

// Calls until every backend in `want` has answered at least once, or
// `timeout` passes; true when all answered. Used before measuring, so a
// distribution is not skewed by backends still connecting (docs/grpc-internals.md, "Foundations").
inline bool WaitForBackends(lbkit::examples::Greeter::Stub& stub,
                            const std::set<std::string>& want,
                            std::chrono::milliseconds timeout =
                                std::chrono::seconds(20)) {
  std::set<std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    CallResult r = CallOnce(stub, 500);
    if (r.status.ok()) seen.insert(r.backend);
    bool all = true;
    for (const auto& w : want) all = all && seen.count(w) > 0;
    if (all) return true;
    if (!r.status.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Calls in rounds of `batch` until `done(tally of the round)` holds or
// `timeout` passes; returns whether it held. For waiting on a state change
// (a backend excluded or included again) without a fixed sleep.
template <typename Pred>
bool CallUntil(lbkit::examples::Greeter::Stub& stub, int batch, Pred done,
               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Tally round = CallMany(stub, batch, deadline);
    if (round.ok() + round.failed() == batch && done(round)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_GREETER_CALLS_H_
