// Envoy's slow start for lbkit_round_robin and lbkit_least_request: an
// endpoint that has just become READY gets a growing share of the calls
// over `window`, its weight scaled by
//   max(minWeightPercent / 100, (max(t, 1 s) / window) ^ (1 / aggression))
// where t is the time since it became READY (Istio's warmupDurationSecs, or
// warmup: {duration, minimumPercent, aggression}).
//
//   "slowStart": {"window": "30s", "aggression": 1.0, "minWeightPercent": 10}

#ifndef LBKIT_POLICIES_COMMON_SLOW_START_H_
#define LBKIT_POLICIES_COMMON_SLOW_START_H_

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"

namespace lbkit::policies {

struct SlowStartParams {
  grpc_core::Duration window;
  double aggression = 1.0;
  double min_weight_percent = 10;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&);
  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    grpc_core::ValidationErrors* errors);

  // The weight factor of an endpoint READY for `age`: 1 once the window
  // has passed.
  double Factor(grpc_core::Duration age) const;
  // How often the policy republishes its picker while an endpoint ramps.
  grpc_core::Duration Step() const;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_SLOW_START_H_
