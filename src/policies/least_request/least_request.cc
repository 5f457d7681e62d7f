// lbkit_least_request. Each pick draws choiceCount distinct READY endpoints
// (in proportion to weight) and takes the one with the fewest calls in
// flight, or with peakEwma the lowest EWMA round-trip time x (in flight + 1)
// (src/algorithms/least_request.h has the exact costs). A call tracker
// counts every call, unary or streaming, from pick to end and feeds the
// EWMA with its duration.
//
// gRFC A48 (least_request_experimental in grpc-go/java) counts the same
// way; gRPC C++ 1.51 has no least-request policy.

#include "policies/least_request/least_request.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/least_request.h"
#include "algorithms/peak_ewma.h"
#include "common/server_address_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/call_counter.h"
#include "policies/common/clock.h"
#include "policies/common/leaf_policy.h"
#include "policies/common/slow_start.h"
#include "policies/common/health_check.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "policies/register.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;

//
// Config
//

struct PeakEwmaConfig {
  grpc_core::Duration decay = grpc_core::Duration::Seconds(10);
  grpc_core::Duration default_rtt = grpc_core::Duration::Milliseconds(30);

  static const grpc_core::JsonLoaderInterface* JsonLoader(
      const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<PeakEwmaConfig>()
            .OptionalField("decay", &PeakEwmaConfig::decay)
            .OptionalField("defaultRtt", &PeakEwmaConfig::default_rtt)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    grpc_core::ValidationErrors* errors) {
    for (auto [name, value] : {std::pair<const char*, grpc_core::Duration>{
                                   ".decay", decay},
                               {".defaultRtt", default_rtt}}) {
      grpc_core::ValidationErrors::ScopedField field(errors, name);
      if (value <= grpc_core::Duration::Zero() && !errors->FieldHasErrors()) {
        errors->AddError("must be greater than 0");
      }
    }
  }
};

struct LeastRequestParams {
  absl::optional<HealthCheckParams> health_check;
  uint32_t choice_count = 2;
  double active_request_bias = 1.0;
  absl::optional<PeakEwmaConfig> peak_ewma;
  absl::optional<SlowStartParams> slow_start;

  static const grpc_core::JsonLoaderInterface* JsonLoader(
      const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<LeastRequestParams>()
            .OptionalField("healthCheck", &LeastRequestParams::health_check)
            .OptionalField("slowStart", &LeastRequestParams::slow_start)
            .OptionalField("choiceCount", &LeastRequestParams::choice_count)
            .OptionalField("activeRequestBias",
                           &LeastRequestParams::active_request_bias)
            .OptionalField("peakEwma", &LeastRequestParams::peak_ewma)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    grpc_core::ValidationErrors* errors) {
    {
      grpc_core::ValidationErrors::ScopedField field(errors, ".choiceCount");
      // Not on top of a parse error already reported for the field.
      if (choice_count < 2 && !errors->FieldHasErrors()) {
        errors->AddError("must be at least 2");
      }
    }
    // As gRFC A48: more than 10 choices buys nothing, so it is clamped.
    if (choice_count > algorithms::LeastRequestChooser::kMaxChoices) {
      choice_count = algorithms::LeastRequestChooser::kMaxChoices;
    }
    {
      grpc_core::ValidationErrors::ScopedField field(errors,
                                                     ".activeRequestBias");
      if ((!(active_request_bias >= 0) || std::isinf(active_request_bias)) &&
          !errors->FieldHasErrors()) {
        errors->AddError("must be a finite number >= 0");
      }
    }
  }
};

}  // namespace

// What least request keeps per endpoint. Both live as long as the endpoint,
// across picker rebuilds and resolver updates that keep the address.
struct LeastRequestData : public EndpointData {
  static constexpr char kKind = 0;
  LeastRequestData() : EndpointData(&kKind) {}
  // Calls picked for the endpoint and not yet finished (unary calls and
  // streams alike), written by pickers and call trackers on any thread.
  std::atomic<int64_t> in_flight{0};
  // The round-trip estimate calls feed with peakEwma.
  algorithms::PeakEwma latency;
};

namespace {

//
// Call tracker
//

// Counts a call from pick to end and, with peakEwma, feeds its duration to
// the endpoint's estimate. The in-flight count is raised at the pick (so the
// next pick sees it at once) and lowered when the channel destroys the
// tracker, which it does exactly once per picked call however it ends.
class CallTracker : public LoadBalancingPolicy::SubchannelCallTrackerInterface {
 public:
  // `clock`: the policy's (null: the steady clock); read only with
  // `feed_ewma` (peakEwma).
  // `data`: the endpoint's (the picker's cached pointer, already checked).
  CallTracker(RefCountedPtr<Endpoint> endpoint, LeastRequestData* data, const PolicyClock* clock,
              bool feed_ewma)
      : endpoint_(std::move(endpoint)),
        data_(*data),
        clock_(clock),
        feed_ewma_(feed_ewma) {}

  ~CallTracker() override {
    data_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() override {
    if (feed_ewma_) start_ns_ = NowNanos(clock_);
  }

  // Only successful calls feed the estimate: a backend that fails fast must
  // not look fast and attract more traffic.
  void Finish(FinishArgs args) override {
    if (!feed_ewma_ || start_ns_ < 0 || !args.status.ok()) return;
    const int64_t now = NowNanos(clock_);
    data_.latency.Observe(static_cast<double>(now - start_ns_), now);
  }

 private:
  RefCountedPtr<Endpoint> endpoint_;  // keeps data_
  LeastRequestData& data_;
  const PolicyClock* const clock_;
  const bool feed_ewma_;
  int64_t start_ns_ = -1;  // not started (a fake clock starts at 0)
};

//
// Picker
//

class LeastRequestPicker : public LoadBalancingPolicy::SubchannelPicker,
                           public ServingCount {
 public:
  struct Entry {
    RefCountedPtr<Endpoint> endpoint;
    RefCountedPtr<SubchannelInterface> subchannel;
    LeastRequestData* data;  // the endpoint's, which `endpoint` keeps
  };

  LeastRequestPicker(std::vector<Entry> entries,
                     const std::vector<uint32_t>& weights,
                     algorithms::LeastRequestOptions options, bool peak_ewma,
                     const PolicyClock* clock)
      : entries_(std::move(entries)),
        chooser_(weights, options),
        peak_ewma_(peak_ewma),
        clock_(clock) {}

  LoadBalancingPolicy::PickResult Pick(
      LoadBalancingPolicy::PickArgs /*args*/) override {
    const int64_t now = peak_ewma_ ? NowNanos(clock_) : 0;
    const size_t chosen = chooser_.Choose(
        [this](size_t i) {
          return entries_[i].data->in_flight.load(
              std::memory_order_relaxed);
        },
        [this, now](size_t i) {
          return peak_ewma_ ? entries_[i].data->latency.Estimate(now)
                            : 0.0;
        });
    const Entry& entry = entries_[chosen];
    entry.data->in_flight.fetch_add(1, std::memory_order_relaxed);
    return LoadBalancingPolicy::PickResult::Complete(
        entry.subchannel,
        CountCall(entry.endpoint->stats(), std::make_unique<CallTracker>(
                                               entry.endpoint->Ref(), entry.data, clock_,
                                               peak_ewma_)));
  }
  std::optional<size_t> ServingEndpoints() const override { return entries_.size(); }

 private:
  const std::vector<Entry> entries_;
  const algorithms::LeastRequestChooser chooser_;
  const bool peak_ewma_;
  const PolicyClock* const clock_;
};

//
// Policy
//

class LeastRequest : public LeafPolicy {
 public:
  explicit LeastRequest(Args args)
      : LeafPolicy(std::move(args), kLeastRequestPolicyName),
        clock_(ClockOf(channel_control_helper()->GetEventEngine())) {}

  absl::string_view name() const override { return kLeastRequestPolicyName; }

  const absl::optional<HealthCheckParams>* HealthCheckOf(const Config& config) const override {
    return &ParamsOf<LeastRequestParams>(config).health_check;
  }

 private:
  std::unique_ptr<EndpointData> MakeEndpointData() override {
    return std::make_unique<LeastRequestData>();
  }

  void ApplyConfigLocked(const RefCountedPtr<Config>& config) override {
    if (config != nullptr) {
      params_ = ParamsOf<LeastRequestParams>(*config);
    }
  }

  std::unique_ptr<SubchannelPicker> MakeReadyPicker(
      const std::vector<Endpoint*>& ready) override {
    std::vector<LeastRequestPicker::Entry> entries;
    std::vector<uint32_t> weights;
    entries.reserve(ready.size());
    weights.reserve(ready.size());
    const int64_t now = NowNanos(clock_);
    for (Endpoint* endpoint : ready) {
      if (params_.peak_ewma.has_value()) {
        endpoint->data<LeastRequestData>().latency.Configure(
            static_cast<double>(params_.peak_ewma->decay.millis()) * 1e6,
            static_cast<double>(params_.peak_ewma->default_rtt.millis()) * 1e6,
            now);
      }
      entries.push_back(
          {endpoint->Ref(), endpoint->subchannel(), &endpoint->data<LeastRequestData>()});
      weights.push_back(internal::EndpointWeight(endpoint->address()));
    }
    // Slow start scales a ramping endpoint's weight, as Envoy's does: it is
    // drawn less often and costs more when busy (algorithms/least_request.h).
    const std::vector<double> factors = SlowStartFactorsLocked(
        ready, params_.slow_start.has_value() ? &*params_.slow_start : nullptr);
    if (std::any_of(factors.begin(), factors.end(), [](double f) { return f < 1.0; })) {
      for (size_t i = 0; i < weights.size(); ++i) {
        weights[i] = static_cast<uint32_t>(std::clamp<double>(
            std::round(static_cast<double>(weights[i]) * factors[i] * 100), 1, UINT32_MAX));
      }
    }
    algorithms::LeastRequestOptions options;
    options.choice_count = static_cast<int>(params_.choice_count);
    options.active_request_bias = params_.active_request_bias;
    return std::make_unique<LeastRequestPicker>(
        std::move(entries), weights, options, params_.peak_ewma.has_value(), clock_);
  }

  LeastRequestParams params_;
  const PolicyClock* const clock_;
};

}  // namespace

void RegisterLeastRequest(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<LeastRequest, LeastRequestParams>>(
          kLeastRequestPolicyName));
}

}  // namespace lbkit::policies
