// The part every lbkit parent policy shares (lbkit_locality,
// lbkit_weighted_subsets and lbkit_routes through SubsetRouter,
// lbkit_outlier_ejection, lbkit_circuit_breaker): it keeps the config and the
// policy's stats, answers resolver errors, keeps a set of named ChildPolicy
// objects in step with what the subclass asks for, forwards ExitIdle and
// ResetBackoff to them, and publishes pickers. It is LeafPolicy's template
// method one level up: a subclass says which children it wants for an
// address list and builds the picker from them.
//
//   class MyParent : public ParentPolicy {
//     MyParent(Args args) : ParentPolicy(std::move(args), kName) {}
//     absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) override {
//       ChildSpecs specs;
//       specs["all"] = {"all", update.addresses, ParamsOf<MyParams>(config()).child_policy};
//       return specs;
//     }
//     PickerUpdate MakePickerLocked() override { ... children() ... }
//   };
//
// A wrapper (one child that sees every address) keys its one child by the
// policy's own name; the child's update status then passes through as is.
// All methods run on the policy's WorkSerializer.

#ifndef LBKIT_POLICIES_COMMON_PARENT_POLICY_H_
#define LBKIT_POLICIES_COMMON_PARENT_POLICY_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/orphanable.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/resolver/server_address.h"
#include "stats/stats.h"

namespace lbkit::policies {

class ParentPolicy : public grpc_core::LoadBalancingPolicy, public ChildPolicy::Owner {
 public:
  absl::string_view name() const final { return policy_name_; }
  absl::Status UpdateLocked(UpdateArgs args) final;
  void ExitIdleLocked() final;
  void ResetBackoffLocked() final;
  void OnChildChangedLocked() final;

 protected:
  // What one child should run: `name` shows in DumpState() and in errors.
  struct ChildSpec {
    std::string name;
    grpc_core::ServerAddressList addresses;
    grpc_core::RefCountedPtr<Config> config;
  };
  using ChildSpecs = std::map<std::string, ChildSpec>;  // by key
  using Children = std::map<std::string, grpc_core::OrphanablePtr<ChildPolicy>>;

  // A resolver update that carried addresses.
  struct AddressUpdate {
    const grpc_core::ServerAddressList& addresses;
    const grpc_core::ChannelArgs& args;
    const std::string& resolution_note;
  };

  // What to publish; a null picker publishes nothing.
  struct PickerUpdate {
    grpc_connectivity_state state = GRPC_CHANNEL_CONNECTING;
    absl::Status status;
    std::unique_ptr<SubchannelPicker> picker;
  };

  ParentPolicy(Args args, absl::string_view policy_name);

  // Every update, before its addresses are looked at (an update with a
  // resolver error included): the new config is in config().
  virtual void OnConfigLocked() {}

  // The children the policy wants for `update`; children not named are
  // shut down, new ones created. An error fails the channel with it (and
  // removes every child): no address is usable.
  virtual absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) = 0;

  // The picker over the children's current states and pickers.
  virtual PickerUpdate MakePickerLocked() = 0;

  // A wrapper's own subchannel wrapper for its child's subchannels (see
  // ChildPolicy::Wrapping). Asked once per child, when it is created.
  virtual ChildPolicy::Wrapping SubchannelWrapping() { return {}; }

  // After the base has dropped its children.
  virtual void OnShutdownLocked() {}

  // Asks MakePickerLocked() and publishes what it returns.
  void UpdatePickerLocked();

  const Config& config() const { return *config_; }
  const grpc_core::RefCountedPtr<Config>& config_ref() const { return config_; }
  const Children& children() const { return children_; }
  const ChildPolicy* child(const std::string& key) const;
  const std::shared_ptr<stats::PolicyStats>& policy_stats() const { return stats_; }
  bool shutting_down() const { return shutdown_; }

  // CONNECTING, with a picker that queues calls until the next one.
  PickerUpdate Queue();
  static PickerUpdate Fail(absl::Status status);

 private:
  void ShutdownLocked() final;
  absl::Status UpdateChildrenLocked(ChildSpecs specs, const grpc_core::ChannelArgs& args,
                                    const std::string& resolution_note);
  void PublishLocked(PickerUpdate update);

  const absl::string_view policy_name_;
  const std::shared_ptr<stats::PolicyStats> stats_;
  grpc_core::RefCountedPtr<Config> config_;
  Children children_;
  // Set while children are updated: their reports are folded into the one
  // picker published after the update.
  bool updating_ = false;
  bool shutdown_ = false;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_PARENT_POLICY_H_
