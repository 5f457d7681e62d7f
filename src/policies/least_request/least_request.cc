// lbkit_least_request. Each pick draws choiceCount distinct READY endpoints
// (in proportion to weight) and takes the one with the fewest calls in
// flight, or with an EWMA of round-trip time (peakEwma, Linkerd's;
// latencyEwma, lbkit's) the lowest latency cost (src/algorithms/
// least_request.h has the exact costs). Hooks in the call's tracker count
// every call, unary or streaming, from pick to end and feed the EWMA with
// its duration.
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
#include "algorithms/rtt_ewma.h"
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

// peakEwma's and latencyEwma's fields; only the default decay differs.
template <int kDefaultDecayMs>
struct EwmaConfig {
  grpc_core::Duration decay = grpc_core::Duration::Milliseconds(kDefaultDecayMs);
  grpc_core::Duration default_rtt = grpc_core::Duration::Milliseconds(30);

  static const grpc_core::JsonLoaderInterface* JsonLoader(
      const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<EwmaConfig>()
            .OptionalField("decay", &EwmaConfig::decay)
            .OptionalField("defaultRtt", &EwmaConfig::default_rtt)
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

using PeakEwmaConfig = EwmaConfig<10000>;    // Linkerd, Finagle: 10 s
using LatencyEwmaConfig = EwmaConfig<1000>;  // docs/latency-aware.md: 1 s

struct LeastRequestParams {
  absl::optional<HealthCheckParams> health_check;
  uint32_t choice_count = 2;
  double active_request_bias = 1.0;
  absl::optional<PeakEwmaConfig> peak_ewma;
  absl::optional<LatencyEwmaConfig> latency_ewma;
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
            .OptionalField("latencyEwma", &LeastRequestParams::latency_ewma)
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
    if (peak_ewma.has_value() && latency_ewma.has_value()) {
      grpc_core::ValidationErrors::ScopedField field(errors, ".latencyEwma");
      errors->AddError("peakEwma and latencyEwma are two estimators; set one of them");
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
// Its call count (CallCountedData) is the calls picked for the endpoint and
// not yet finished (unary calls and streams alike), written by pickers and
// call trackers on any thread.
struct LeastRequestData : public CallCountedData {
  static constexpr char kKind = 0;
  LeastRequestData() : CallCountedData(&kKind) {}
  // The round-trip estimate calls feed with peakEwma or latencyEwma.
  algorithms::RttEwma latency;
};

namespace {

//
// Call hooks
//

// Counts a call from pick to end and, with an EWMA, feeds its duration to
// the endpoint's estimate. The in-flight count is raised at the pick (so the
// next pick sees it at once) and lowered when the channel destroys the
// tracker, which it does exactly once per picked call however it ends.
// Lives inside the call's one tracker (call_counter.h).
class LeastRequestHooks {
 public:
  // `data`: the endpoint's (the picker's cached pointer, already checked).
  // `clock`: the policy's (null: the cycle and coarse clocks). `stats`:
  // where the estimate is shown, null if it need not be.
  LeastRequestHooks(LeastRequestData* data, const PolicyClock* clock, bool feed_ewma,
                    stats::EndpointStats* stats)
      : data_(data), clock_(clock), stats_(stats), feed_ewma_(feed_ewma) {
    data_->CallPicked();
  }
  LeastRequestHooks(LeastRequestHooks&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        clock_(other.clock_),
        stats_(other.stats_),
        start_(other.start_),
        feed_ewma_(other.feed_ewma_),
        started_(other.started_) {}
  LeastRequestHooks& operator=(LeastRequestHooks&&) = delete;
  ~LeastRequestHooks() {
    if (data_ != nullptr) data_->CallEnded();  // may free the data
  }

  void Start() {
    if (!feed_ewma_) return;
    start_ = CallTimerStart(clock_);
    started_ = true;
  }

  // Only successful calls feed the estimate: a backend that fails fast must
  // not look fast and attract more traffic.
  void Finish(const SubchannelCallTracker::FinishArgs& args) {
    if (!feed_ewma_ || !started_) return;
    if (!args.status.ok()) {
      data_->latency.ObserveFailure(SampleNowNanos(clock_));
      return;
    }
    const double estimate = data_->latency.Observe(
        static_cast<double>(CallTimerElapsed(clock_, start_)), SampleNowNanos(clock_));
    // The counter has not reported this call yet, so `stats_` is alive.
    if (stats_ != nullptr) stats_->SetLatencyEstimate(estimate);
  }

 private:
  LeastRequestData* data_;  // kept alive by this call's count
  const PolicyClock* clock_;
  stats::EndpointStats* stats_;
  uint64_t start_ = 0;
  bool feed_ewma_;
  bool started_ = false;
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
    LeastRequestData* data;        // the endpoint's, which `endpoint` keeps
    stats::EndpointStats* stats;   // the same
  };

  LeastRequestPicker(std::vector<Entry> entries,
                     const std::vector<uint32_t>& weights,
                     algorithms::LeastRequestOptions options, bool ewma,
                     const PolicyClock* clock)
      : entries_(std::move(entries)),
        chooser_(weights, options),
        ewma_(ewma),
        clock_(clock) {}

  LoadBalancingPolicy::PickResult Pick(
      LoadBalancingPolicy::PickArgs /*args*/) override {
    const int64_t now = ewma_ ? DecayNowNanos(clock_) : 0;
    const size_t chosen = chooser_.Choose(
        [this](size_t i) {
          return entries_[i].data->in_flight();
        },
        [this, now](size_t i) { return EstimateOf(*entries_[i].data, now); });
    const Entry& entry = entries_[chosen];
    stats::EndpointStats* counted = Counted(entry.stats);
    return LoadBalancingPolicy::PickResult::Complete(
        entry.subchannel,
        CountCall(counted, LeastRequestHooks(entry.data, clock_, ewma_, ewma_ ? counted : nullptr)));
  }
  std::optional<size_t> ServingEndpoints() const override { return entries_.size(); }

 private:
  // The latency an endpoint is compared by (0: not at all, in-flight count
  // only). latencyEwma probes an endpoint it has no sample of: idle, it
  // costs nothing and takes the next call it is drawn for; with that call
  // in flight, its default. Compared by its default alone, a new endpoint
  // would wait for that default to decay below the others' estimates (4-6
  // decay periods) before its first call.
  double EstimateOf(const LeastRequestData& data, int64_t now) const {
    if (!ewma_) return 0.0;
    if (!data.latency.Seeded() && data.in_flight() == 0) return 0.0;
    return data.latency.Estimate(now);
  }

  const std::vector<Entry> entries_;
  const algorithms::LeastRequestChooser chooser_;
  const bool ewma_;  // peakEwma or latencyEwma
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
    const int64_t now = DecayNowNanos(clock_);
    for (Endpoint* endpoint : ready) {
      ConfigureEwma(endpoint, now);
      entries.push_back(
          {endpoint->Ref(), endpoint->subchannel(), &endpoint->data<LeastRequestData>(),
           endpoint->stats().get()});
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
    options.squared_latency = params_.latency_ewma.has_value();
    return std::make_unique<LeastRequestPicker>(
        std::move(entries), weights, options,
        params_.peak_ewma.has_value() || params_.latency_ewma.has_value(), clock_);
  }

  // Sets the endpoint's estimator from the config. The dump's estimate is
  // cleared when there is none, or when it starts again, so that it never
  // shows a number the policy no longer routes by.
  void ConfigureEwma(Endpoint* endpoint, int64_t now) const {
    auto ns = [](grpc_core::Duration d) { return static_cast<double>(d.millis()) * 1e6; };
    algorithms::RttEwma& ewma = endpoint->data<LeastRequestData>().latency;
    bool restarted = true;
    if (params_.peak_ewma.has_value()) {
      restarted = ewma.Configure(algorithms::RttEwma::Mode::kPeak, ns(params_.peak_ewma->decay),
                                 ns(params_.peak_ewma->default_rtt), now);
    } else if (params_.latency_ewma.has_value()) {
      restarted = ewma.Configure(algorithms::RttEwma::Mode::kMean,
                                 ns(params_.latency_ewma->decay),
                                 ns(params_.latency_ewma->default_rtt), now);
    }
    if (restarted) endpoint->stats()->SetLatencyEstimate(-1);
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
