// Active health checking for every lbkit leaf policy: the `healthCheck`
// config object and the poller behind its "poll" mode.
//
//   "healthCheck": {"mode": "poll", "serviceName": "", "interval": "10s",
//                   "timeout": "5s", "unhealthyThreshold": 3, "healthyThreshold": 2}
//
// "watch" (the default) is gRPC's own streaming grpc.health.v1.Health/Watch on
// the subchannel's connection: the policy sets the health-check service name
// on its subchannels, as the top-level `healthCheckConfig` does for the
// whole channel. "poll" sends a unary Check every `interval` (on a connection
// of its own, as Envoy's health checker does, made with the application
// channel's credentials and authority, so TLS and mTLS backends are checked
// as the calls reach them) and flips an endpoint's health
// only after `unhealthyThreshold` / `healthyThreshold` results in a row
// (src/algorithms/health_thresholds.h). An endpoint is usable when its
// subchannel is READY and, with polling, its last verdict is healthy.

#ifndef LBKIT_POLICIES_COMMON_HEALTH_CHECK_H_
#define LBKIT_POLICIES_COMMON_HEALTH_CHECK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/health_thresholds.h"
#include "common/work_serializer_hop.h"
#include "policies/common/policy_timer.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/orphanable.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"

#include <grpc/event_engine/event_engine.h>

namespace lbkit::policies {

struct HealthCheckParams {
  std::string service_name;
  std::string mode = "watch";  // "watch" or "poll"
  grpc_core::Duration interval = grpc_core::Duration::Seconds(10);
  grpc_core::Duration timeout = grpc_core::Duration::Seconds(5);
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;

  bool poll() const { return mode == "poll"; }
  bool operator==(const HealthCheckParams& o) const {
    return service_name == o.service_name && mode == o.mode && interval == o.interval &&
           timeout == o.timeout && unhealthy_threshold == o.unhealthy_threshold &&
           healthy_threshold == o.healthy_threshold;
  }
  bool operator!=(const HealthCheckParams& o) const { return !(*this == o); }

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&);
  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    grpc_core::ValidationErrors* errors);
};

// Polls one endpoint's grpc.health.v1.Health/Check. Created and orphaned on
// the policy's WorkSerializer; `on_change(healthy, why)` runs there when the
// verdict changes (the first result always reports).
class HealthPoller : public grpc_core::InternallyRefCounted<HealthPoller> {
 public:
  using OnChange = std::function<void(bool healthy, absl::Status why)>;

  // `channel_args` are the policy's (they carry the channel's credentials);
  // `authority` is the application channel's, which TLS checks the
  // backend's certificate against.
  HealthPoller(std::string address, HealthCheckParams params,
               const grpc_core::ChannelArgs& channel_args, absl::string_view authority,
               std::shared_ptr<grpc_core::WorkSerializer> serializer,
               grpc_event_engine::experimental::EventEngine* event_engine, OnChange on_change);
  ~HealthPoller() override;

  void Orphan() override;

 private:
  struct Call;

  void CheckLocked();
  void OnResultLocked(bool healthy, absl::Status why);
  void ScheduleLocked();

  const std::string address_;
  const HealthCheckParams params_;
  const std::shared_ptr<grpc_core::WorkSerializer> serializer_;
  OnChange on_change_;
  algorithms::HealthThresholds thresholds_;
  std::shared_ptr<void> channel_;  // a grpc::Channel, kept opaque here
  PolicyTimer timer_;  // the next check
  bool shutdown_ = false;
  bool logged_unimplemented_ = false;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_HEALTH_CHECK_H_
