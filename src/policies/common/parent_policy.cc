#include "policies/common/parent_policy.h"

#include <algorithm>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policies/common/policy_factory.h"
#include "policies/common/trace.h"

namespace lbkit::policies {

ParentPolicy::ParentPolicy(Args args, absl::string_view policy_name)
    : LoadBalancingPolicy(std::move(args)),
      policy_name_(policy_name),
      stats_(stats::PolicyStats::Register(std::string(policy_name), /*counts_calls=*/false)) {}

absl::Status ParentPolicy::UpdateLocked(UpdateArgs args) {
  if (shutdown_) return absl::OkStatus();
  if (args.config != nullptr) config_ = std::move(args.config);
  stats_->SetTarget(ChannelTarget(args.args, channel_control_helper()));
  stats_->SetConfigJson(ConfigJson(config_.get()));
  OnConfigLocked();
  if (!args.addresses.ok()) {
    stats_->CountResolverError(args.addresses.status().ToString());
    // Keep what the children have; with nothing to pick from yet, the
    // resolver's error explains the failure.
    bool any_picker = false;
    for (const auto& [key, c] : children_) any_picker = any_picker || c->picker() != nullptr;
    if (!any_picker) PublishLocked(Fail(args.addresses.status()));
    return args.addresses.status();
  }
  absl::StatusOr<ChildSpecs> specs =
      ChildrenForLocked({*args.addresses, args.args, args.resolution_note});
  if (!specs.ok()) {
    children_.clear();
    PublishLocked(Fail(specs.status()));
    return specs.status();
  }
  absl::Status status = UpdateChildrenLocked(*std::move(specs), args.args, args.resolution_note);
  UpdatePickerLocked();
  return status;
}

absl::Status ParentPolicy::UpdateChildrenLocked(ChildSpecs specs,
                                                const grpc_core::ChannelArgs& args,
                                                const std::string& resolution_note) {
  updating_ = true;
  for (auto it = children_.begin(); it != children_.end();) {
    if (specs.count(it->first) != 0) {
      ++it;
      continue;
    }
    LBKIT_TRACE(policy_name_, this, "child %s: removed", it->second->name().c_str());
    it = children_.erase(it);
  }
  std::vector<std::string> errors;
  absl::Status only;
  for (auto& [key, spec] : specs) {
    auto& c = children_[key];  // in the map before it can report
    if (c == nullptr) {
      LBKIT_TRACE(policy_name_, this, "child %s: created", spec.name.c_str());
      c = grpc_core::MakeOrphanable<ChildPolicy>(
          spec.name, this, Ref(DEBUG_LOCATION, "Child"), channel_control_helper(),
          work_serializer(), interested_parties(), args, SubchannelWrapping());
    }
    absl::Status status =
        c->UpdateLocked(std::move(spec.addresses), std::move(spec.config), args, resolution_note);
    if (!status.ok()) errors.push_back(absl::StrCat(c->name(), ": ", status.ToString()));
    only = std::move(status);
  }
  updating_ = false;
  // A wrapper's one child speaks for the policy.
  if (specs.size() == 1 && specs.begin()->first == policy_name_) return only;
  if (errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(policy_name_, ": [", absl::StrJoin(errors, "; "), "]"));
}

void ParentPolicy::ExitIdleLocked() {
  for (auto& [key, c] : children_) c->ExitIdleLocked();
}

void ParentPolicy::ResetBackoffLocked() {
  for (auto& [key, c] : children_) c->ResetBackoffLocked();
}

void ParentPolicy::OnChildChangedLocked() {
  if (updating_) return;
  UpdatePickerLocked();
}

void ParentPolicy::UpdatePickerLocked() {
  if (shutdown_) return;
  PickerUpdate update = MakePickerLocked();
  if (update.picker != nullptr) PublishLocked(std::move(update));
}

const ChildPolicy* ParentPolicy::child(const std::string& key) const {
  auto it = children_.find(key);
  return it == children_.end() ? nullptr : it->second.get();
}

ParentPolicy::PickerUpdate ParentPolicy::Queue() {
  return {GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
          std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker"))};
}

ParentPolicy::PickerUpdate ParentPolicy::Fail(absl::Status status) {
  auto picker = std::make_unique<TransientFailurePicker>(status);
  return {GRPC_CHANNEL_TRANSIENT_FAILURE, std::move(status), std::move(picker)};
}

void ParentPolicy::PublishLocked(PickerUpdate update) {
  LBKIT_TRACE(policy_name_, this, "picker: %s%s%s", stats::ConnectivityName(update.state),
              update.status.ok() ? "" : ": ",
              update.status.ok() ? "" : update.status.ToString().c_str());
  stats_->CountPickerUpdate();
  channel_control_helper()->UpdateState(update.state, update.status, std::move(update.picker));
}

void ParentPolicy::ShutdownLocked() {
  shutdown_ = true;
  children_.clear();
  OnShutdownLocked();
}

}  // namespace lbkit::policies
