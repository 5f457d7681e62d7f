// Where requests went: the live state of every lbkit policy in the process
// (the in-process `istioctl proxy-config endpoint`), Prometheus metrics, and
// an optional admin HTTP server for both.
//
//   std::cout << lbkit::DumpState();          // JSON, schema in docs/stats.md
//   std::string metrics = lbkit::PrometheusText();
//
//   // Or serve them on loopback: /metrics and /lbkit/state.
//   auto admin = lbkit::AdminServer::Start(9901);
//   if (!admin.ok()) std::cerr << admin.status() << "\n";
//
// Every lbkit policy instance (one per channel, plus one per child policy)
// reports: per endpoint its address, locality, labels, weight, state,
// health, ejection, picks, calls in flight, calls finished by gRPC status
// code and a latency histogram; per policy its config, picker updates and
// resolver errors. Counting costs atomics on the call path, no lock and no
// allocation (RESULTS.md has the figures).
//
// LBKIT_TRACE=round_robin,outlier_ejection,... (or "all") turns on the
// policies' decision logs through gRPC's logging at RegisterAll().

#ifndef LBKIT_STATS_H_
#define LBKIT_STATS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lbkit {

// A JSON object: {"policies": [{"id", "policy", "target", "config",
// "picker_updates", "resolver_errors", "last_resolver_error", "detail",
// "endpoints": [...]}]}. docs/stats.md documents every field.
std::string DumpState();

// Prometheus text exposition format (version 0.0.4): lbkit_endpoint_*
// families and lbkit_request_duration_seconds, labelled by target, policy,
// endpoint and locality.
std::string PrometheusText();

// A small HTTP server on 127.0.0.1 serving GET /metrics (PrometheusText())
// and GET /lbkit/state (DumpState()). Stops when destroyed.
class AdminServer {
 public:
  // `port` 0 picks a free port (see port()).
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(int port);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  int port() const;

 private:
  class Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lbkit

#endif  // LBKIT_STATS_H_
