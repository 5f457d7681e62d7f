#include "policies/common/slow_start.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lbkit::policies {

const grpc_core::JsonLoaderInterface* SlowStartParams::JsonLoader(const grpc_core::JsonArgs&) {
  static const auto* loader =
      grpc_core::JsonObjectLoader<SlowStartParams>()
          .Field("window", &SlowStartParams::window)
          .OptionalField("aggression", &SlowStartParams::aggression)
          .OptionalField("minWeightPercent", &SlowStartParams::min_weight_percent)
          .Finish();
  return loader;
}

void SlowStartParams::JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                                   grpc_core::ValidationErrors* errors) {
  {
    grpc_core::ValidationErrors::ScopedField field(errors, ".window");
    if (!errors->FieldHasErrors() && window <= grpc_core::Duration::Zero()) {
      errors->AddError("must be more than 0");
    }
  }
  {
    grpc_core::ValidationErrors::ScopedField field(errors, ".aggression");
    if (!errors->FieldHasErrors() && !(aggression > 0)) errors->AddError("must be more than 0");
  }
  grpc_core::ValidationErrors::ScopedField field(errors, ".minWeightPercent");
  if (!errors->FieldHasErrors() && !(min_weight_percent >= 0 && min_weight_percent <= 100)) {
    errors->AddError("must be in [0, 100]");
  }
}

double SlowStartParams::Factor(grpc_core::Duration age) const {
  if (age >= window) return 1.0;
  // Envoy counts at least one second, so a fresh endpoint starts above 0.
  const double t = std::max<double>(age.millis(), std::min<double>(1000, window.millis()));
  const double time_factor = std::pow(t / window.millis(), 1.0 / aggression);
  return std::min(1.0, std::max(min_weight_percent / 100, time_factor));
}

grpc_core::Duration SlowStartParams::Step() const {
  return std::clamp(window / 50, grpc_core::Duration::Milliseconds(50),
                    grpc_core::Duration::Seconds(1));
}

}  // namespace lbkit::policies
