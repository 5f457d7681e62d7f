// Pickers to benchmark, made the way the channel makes them: each policy is
// created through gRPC's registry with the fake helper of the policy tests,
// given N addresses, and every subchannel is reported READY; the picker the
// policy then publishes is what a real channel would call per RPC.
//
// Adding a policy to every micro benchmark is one entry in kPickerPolicies.

#ifndef LBKIT_BENCHMARKS_PICKER_FIXTURES_H_
#define LBKIT_BENCHMARKS_PICKER_FIXTURES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/fake_helper.h"

namespace lbkit::bench {

struct PickerPolicy {
  const char* label;   // Names the benchmark.
  const char* name;    // The policy's registered name.
  const char* config;  // Its loadBalancingConfig object.
  // gRPC's own pickers are not thread-safe (the channel serialises picks
  // under its data-plane lock), so they are measured single-threaded only.
  bool thread_safe;
};

inline const std::vector<PickerPolicy>& PickerPolicies() {
  static const auto* policies = new std::vector<PickerPolicy>{
      {"lbkit_round_robin", "lbkit_round_robin", "{}", true},
      {"lbkit_least_request", "lbkit_least_request", "{}", true},
      {"lbkit_least_request_ewma", "lbkit_least_request", R"({"peakEwma":{}})",
       true},
      {"lbkit_least_request_latency", "lbkit_least_request", R"({"latencyEwma":{}})",
       true},
      // No requestHashHeader in the benchmark: every pick hashes a random
      // value, which costs what a header lookup and XXH64 of a short value
      // would, give or take the metadata lookup.
      {"lbkit_ring_hash", "lbkit_ring_hash", "{}", true},
      {"lbkit_maglev", "lbkit_maglev", "{}", true},
      // Bounded load: counts each call (a call tracker, as least request).
      {"lbkit_maglev_bounded", "lbkit_maglev", R"({"hashBalanceFactor":125})", true},
      // Baselines: gRPC 1.51.1's built-in policies, through the same path.
      {"round_robin", "round_robin", "{}", false},
      {"pick_first", "pick_first", "{}", false},
  };
  return *policies;
}

// "10.x.y.z:443" addresses, distinct for up to 2^24 endpoints.
inline std::vector<std::string> EndpointAddresses(int n) {
  std::vector<std::string> addresses;
  addresses.reserve(n);
  for (int i = 0; i < n; ++i) {
    addresses.push_back(absl::StrCat("10.", (i >> 16) & 255, ".",
                                     (i >> 8) & 255, ".", i & 255, ":443"));
  }
  return addresses;
}

// A policy with n READY endpoints and its current picker.
class ReadyPolicy {
 public:
  ReadyPolicy(const PickerPolicy& policy, int n)
      // The steady clock, as in production: peakEwma reads it on every pick.
      : harness_(std::make_unique<testing::PolicyHarness>(policy.name, /*fake_clock=*/false)) {
    auto addresses = EndpointAddresses(n);
    GPR_ASSERT(harness_->Update(testing::MakeAddresses(addresses), policy.config)
                   .ok());
    // pick_first connects to one address at a time; READY on the first is
    // what it waits for.
    for (const auto& address : addresses) {
      if (harness_->record().Latest(address) != nullptr) {
        harness_->SetState(address, GRPC_CHANNEL_READY);
      }
    }
    GPR_ASSERT(harness_->record().state == GRPC_CHANNEL_READY);
  }

  grpc_core::LoadBalancingPolicy::SubchannelPicker* picker() {
    return harness_->record().picker.get();
  }
  testing::PolicyHarness& harness() { return *harness_; }

 private:
  std::unique_ptr<testing::PolicyHarness> harness_;
};

}  // namespace lbkit::bench

#endif  // LBKIT_BENCHMARKS_PICKER_FIXTURES_H_
