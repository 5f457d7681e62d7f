// One child policy inside an lbkit parent policy (lbkit_locality's
// localities; later the subsets of lbkit_weighted_subsets): a
// ChildPolicyHandler running any registered policy over a subset of the
// parent's addresses, whose state and picker the parent combines.
//
// The parent's own arithmetic (Envoy's priority load) needs healthy/total
// per group whatever the child policy is: ready() is what the child can
// pick from, as an lbkit picker reports it (serving_count.h); for a child
// whose picker does not say, the child's subchannels are wrapped and the
// READY ones counted (health-aware when the channel has a
// healthCheckConfig). A picker the parent builds must pass each child pick through
// ChildPolicy::Unwrap(): the channel needs its own subchannel back
// (docs/grpc-internals.md, "Foundations").
//
//   auto child = grpc_core::MakeOrphanable<ChildPolicy>("us-east/a", this, ...);
//   child->UpdateLocked(addresses, child_config, args, note);
//   ... in OnChildChangedLocked(): child->state(), child->picker(),
//       child->ready(), child->total()
//
// All methods run on the parent's WorkSerializer.

#ifndef LBKIT_POLICIES_COMMON_CHILD_POLICY_H_
#define LBKIT_POLICIES_COMMON_CHILD_POLICY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/orphanable.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"
#include "src/core/lib/resolver/server_address.h"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lbkit::policies {

// Parses the `childPolicy` field of `json` (a loadBalancingConfig list, as
// gRPC's own parent policies take it), or `default_json` when absent. Errors
// go to the ".childPolicy" field.
grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config> ParseChildPolicyField(
    const grpc_core::Json& json, absl::string_view default_json,
    grpc_core::ValidationErrors* errors);

class ChildPolicy : public grpc_core::InternallyRefCounted<ChildPolicy> {
 public:
  // The parent policy.
  class Owner {
   public:
    virtual ~Owner() = default;
    // A child's state, picker or READY count changed.
    virtual void OnChildChangedLocked() = 0;
  };

  // A wrapper policy's own subchannel wrapper (outlier ejection's, the
  // circuit breaker's), made around each subchannel the child creates, and
  // its class's tag: `kind` is &T::kKind for the wrapper class T, which
  // UnwrapTo<T>() checks before it hands the wrapper back on the pick path.
  struct Wrapping {
    using Wrap = std::function<grpc_core::RefCountedPtr<grpc_core::DelegatingSubchannel>(
        const grpc_core::ServerAddress&, grpc_core::RefCountedPtr<grpc_core::SubchannelInterface>)>;
    Wrap wrap;
    const void* kind = nullptr;
  };

  // `parent` is the Owner's policy object: a reference keeps it, and its
  // helper, alive for as long as the child's helper can be called.
  ChildPolicy(std::string name, Owner* owner,
              grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy> parent,
              grpc_core::LoadBalancingPolicy::ChannelControlHelper* parent_helper,
              std::shared_ptr<grpc_core::WorkSerializer> work_serializer,
              grpc_pollset_set* parent_interested_parties, const grpc_core::ChannelArgs& args,
              Wrapping wrapping);
  ~ChildPolicy() override;

  void Orphan() override;

  absl::Status UpdateLocked(grpc_core::ServerAddressList addresses,
                            grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config> config,
                            const grpc_core::ChannelArgs& args, std::string resolution_note);
  void ExitIdleLocked();
  void ResetBackoffLocked();

  const std::string& name() const { return name_; }
  // The child's state, with TRANSIENT_FAILURE sticky until READY (a child
  // cycling through CONNECTING does not look better than it is).
  grpc_connectivity_state state() const { return state_; }
  const absl::Status& status() const { return status_; }
  // Null until the child reports a state.
  const std::shared_ptr<grpc_core::LoadBalancingPolicy::SubchannelPicker>& picker() const {
    return picker_;
  }
  // Addresses in the last update, and how many of them the child can send a
  // call to now (at most total()): 0 unless the child is READY; then what
  // its picker says (policies/common/serving_count.h), or, for a picker that
  // does not say (gRPC's own policies), its READY subchannels. A connection
  // that is up does not make an endpoint usable: a polled health check or an
  // ejection below this parent can keep the child from picking it.
  size_t total() const { return total_; }
  size_t ready() const {
    if (state_ != GRPC_CHANNEL_READY) return 0;
    const size_t n = picker_serving_.has_value() ? *picker_serving_ : connected_;
    return n < total_ ? n : total_;
  }

  // A child's pick with the channel's subchannel in place of the wrapper.
  static grpc_core::LoadBalancingPolicy::PickResult Unwrap(
      grpc_core::LoadBalancingPolicy::PickResult result);

  // The same for a child with a Wrapping: `*wrapper` is the subchannel the
  // Wrapping made, or null when the pick chose none or it is not a T (a
  // checked downcast: the Wrapping's kind must be &T::kKind).
  template <typename T>
  static grpc_core::LoadBalancingPolicy::PickResult UnwrapTo(
      grpc_core::LoadBalancingPolicy::PickResult result, T** wrapper) {
    *wrapper = nullptr;
    const void* kind = nullptr;
    grpc_core::SubchannelInterface* inner = Peel(&result, &kind);
    if (inner != nullptr && kind == &T::kKind) {
      *wrapper = static_cast<T*>(inner);
      PeelTo(&result, (*wrapper)->wrapped_subchannel());
    }
    return result;
  }

 private:
  class Helper;
  class CountingSubchannel;
  class CountingWatcher;

  void OnChangedLocked();
  // Takes the child's counting wrapper off a completed pick; returns what
  // it wrapped (null for other results) and its Wrapping's kind.
  static grpc_core::SubchannelInterface* Peel(grpc_core::LoadBalancingPolicy::PickResult* result,
                                              const void** kind);
  static void PeelTo(grpc_core::LoadBalancingPolicy::PickResult* result,
                     grpc_core::RefCountedPtr<grpc_core::SubchannelInterface> subchannel);

  const std::string name_;
  Owner* const owner_;
  const grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy> parent_;
  grpc_core::LoadBalancingPolicy::ChannelControlHelper* const parent_helper_;
  grpc_pollset_set* const parent_interested_parties_;
  const Wrapping wrapping_;
  grpc_core::OrphanablePtr<grpc_core::LoadBalancingPolicy> policy_;
  bool shutdown_ = false;
  grpc_connectivity_state state_ = GRPC_CHANNEL_CONNECTING;
  absl::Status status_;
  std::shared_ptr<grpc_core::LoadBalancingPolicy::SubchannelPicker> picker_;
  size_t total_ = 0;
  size_t connected_ = 0;  // READY subchannels, as the counting wrappers see them
  std::optional<size_t> picker_serving_;  // the picker's own count, if it keeps one
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_CHILD_POLICY_H_
