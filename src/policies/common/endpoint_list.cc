#include "policies/common/endpoint_list.h"

#include "policies/common/trace.h"

#include <algorithm>
#include <map>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/meta/type_traits.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "algorithms/locality.h"
#include "common/server_address_attributes.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"

namespace lbkit::policies {

std::string AddressText(const grpc_core::ServerAddress& address) {
  auto text = grpc_sockaddr_to_string(&address.address(), /*normalize=*/false);
  if (text.ok()) return *std::move(text);
  auto uri = grpc_sockaddr_to_uri(&address.address());
  if (uri.ok()) return *std::move(uri);
  return absl::StrCat("<unprintable address: ", text.status().message(), ">");
}

//
// Endpoint::Watcher
//

// Holds a reference to its endpoint: gRPC may still deliver a notification
// that was queued before CancelConnectivityStateWatch() (docs/grpc-internals.md, "Foundations"),
// so the endpoint must outlive the watcher and ignore late calls.
class Endpoint::Watcher
    : public grpc_core::SubchannelInterface::ConnectivityStateWatcherInterface {
 public:
  Watcher(grpc_core::RefCountedPtr<Endpoint> endpoint,
          grpc_pollset_set* interested_parties)
      : endpoint_(std::move(endpoint)),
        interested_parties_(interested_parties) {}

  void OnConnectivityStateChange(grpc_connectivity_state new_state,
                                 absl::Status status) override {
    endpoint_->OnStateChangeLocked(new_state, std::move(status));
  }

  grpc_pollset_set* interested_parties() override {
    return interested_parties_;
  }

 private:
  grpc_core::RefCountedPtr<Endpoint> endpoint_;
  grpc_pollset_set* interested_parties_;
};

//
// Endpoint
//

namespace {

std::shared_ptr<stats::EndpointStats> MakeEndpointStats(const grpc_core::ServerAddress& address,
                                                        const std::string& text) {
  const internal::EndpointAttributes* attrs = internal::GetEndpointAttributes(address);
  if (attrs == nullptr) return stats::EndpointStats::Create(text, "", std::map<std::string, std::string>{}, 1);
  // Istio's notation without empty trailing parts: "us-east", "us-east/a".
  const std::string locality =
      algorithms::LocalityName{attrs->locality.region, attrs->locality.zone,
                               attrs->locality.sub_zone}
          .ToString();
  return stats::EndpointStats::Create(text, locality, attrs->labels, attrs->weight);
}

}  // namespace

Endpoint::Endpoint(EndpointList* list, grpc_core::ServerAddress address,
                   std::string address_text)
    : list_(list),
      address_(std::move(address)),
      address_text_(std::move(address_text)),
      data_(list->observer_->MakeEndpointDataLocked().release()),
      stats_(MakeEndpointStats(address_, address_text_)) {}

Endpoint::~Endpoint() = default;

void Endpoint::StartWatchingLocked(const grpc_core::ChannelArgs& args) {
  subchannel_ = list_->helper_->CreateSubchannel(address_, args);
  if (subchannel_ == nullptr) {
    // The channel refuses subchannels only while it shuts down or for an
    // address it cannot use; either way the endpoint can never be READY.
    OnStateChangeLocked(
        GRPC_CHANNEL_TRANSIENT_FAILURE,
        absl::UnavailableError(absl::StrCat(
            "could not create a subchannel for ", address_text_)));
    return;
  }
  auto watcher = std::make_unique<Watcher>(Ref(), list_->interested_parties_);
  watcher_ = watcher.get();
  subchannel_->WatchConnectivityState(std::move(watcher));
  if (list_ != nullptr && list_->polling_.has_value()) {
    stats_->SetHealth(stats::Health::kUnknown);
    poller_ = grpc_core::MakeOrphanable<HealthPoller>(
        address_text_, *list_->polling_, args, list_->helper_->GetAuthority(),
        list_->work_serializer_,
        list_->helper_->GetEventEngine(), [self = Ref()](bool healthy, absl::Status why) {
          self->OnHealthLocked(healthy, std::move(why));
        });
  }
}

void Endpoint::ShutdownLocked() {
  poller_.reset();
  if (subchannel_ != nullptr && watcher_ != nullptr) {
    subchannel_->CancelConnectivityStateWatch(watcher_);
  }
  watcher_ = nullptr;
  subchannel_.reset();
  list_ = nullptr;
}

void Endpoint::OnStateChangeLocked(grpc_connectivity_state new_state,
                                   absl::Status status) {
  if (list_ == nullptr || new_state == GRPC_CHANNEL_SHUTDOWN) return;
  LBKIT_TRACE(list_->policy_name_, list_, "endpoint %s: connection %s%s%s",
              address_text_.c_str(), stats::ConnectivityName(new_state),
              status.ok() ? "" : ": ", status.ok() ? "" : status.ToString().c_str());
  const bool first_report = !reported_once_;
  reported_once_ = true;
  if (new_state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    last_failure_ = status.ok() ? absl::UnavailableError("connection failed")
                                : std::move(status);
    // Not on the first report: a new subchannel that the shared subchannel
    // pool already knows to be failing would otherwise re-resolve at once,
    // and a resolver answering with the same addresses would loop.
    if (!first_report) list_->helper_->RequestReresolution();
  }
  if (new_state == GRPC_CHANNEL_IDLE && connectivity_ == GRPC_CHANNEL_READY) {
    // The connection ended without failing: a GOAWAY (the server's maximum
    // connection age, a graceful shutdown) or an idle timeout. Servers send
    // it precisely so that clients look again, as gRPC's policies do: the
    // set behind a name may have changed. At most once per connection, and
    // resolvers rate-limit their answers (docs/grpc-internals.md,
    // "Re-resolution").
    list_->helper_->RequestReresolution();
  }
  if (new_state == GRPC_CHANNEL_IDLE && subchannel_ != nullptr) {
    // An idle endpoint is one connection attempt away from useful; lbkit's
    // policies keep every endpoint connected, as gRPC's round_robin does.
    subchannel_->RequestConnection();
  }
  connectivity_ = new_state == GRPC_CHANNEL_IDLE ? GRPC_CHANNEL_CONNECTING : new_state;
  UpdateLogicalStateLocked();
}

void Endpoint::OnHealthLocked(bool healthy, absl::Status why) {
  if (list_ == nullptr) return;
  health_ = healthy ? algorithms::HealthThresholds::State::kHealthy
                    : algorithms::HealthThresholds::State::kUnhealthy;
  health_status_ = std::move(why);
  stats_->SetHealth(healthy ? stats::Health::kHealthy : stats::Health::kUnhealthy);
  LBKIT_TRACE(list_->policy_name_, list_, "endpoint %s: health check says %s",
              address_text_.c_str(), healthy ? "healthy" : "unhealthy");
  if (!healthy) {
    gpr_log(GPR_INFO, "%s: %s is unhealthy: %s", list_->policy_name_.c_str(),
            address_text_.c_str(), health_status_.ToString().c_str());
  }
  UpdateLogicalStateLocked();
}

void Endpoint::UpdateLogicalStateLocked() {
  grpc_connectivity_state logical = connectivity_;
  if (poller_ != nullptr && connectivity_ == GRPC_CHANNEL_READY) {
    switch (health_) {
      case algorithms::HealthThresholds::State::kHealthy:
        break;
      case algorithms::HealthThresholds::State::kUnknown:
        logical = GRPC_CHANNEL_CONNECTING;  // no traffic before the first verdict
        break;
      case algorithms::HealthThresholds::State::kUnhealthy:
        logical = GRPC_CHANNEL_TRANSIENT_FAILURE;
        last_failure_ = health_status_;
        break;
    }
  }
  // TRANSIENT_FAILURE is sticky until READY: a backend that keeps failing
  // passes through CONNECTING on every retry, which must not make the
  // aggregate state flap between CONNECTING and TRANSIENT_FAILURE.
  if (state_ == GRPC_CHANNEL_TRANSIENT_FAILURE &&
      logical != GRPC_CHANNEL_READY) {
    return;
  }
  if (logical == state_) return;
  const grpc_connectivity_state old_state = state_;
  state_ = logical;
  stats_->SetConnectivity(logical);
  list_->OnEndpointStateChangeLocked(this, old_state, logical);
}

//
// EndpointList
//

EndpointList::EndpointList(
    absl::string_view policy_name,
    grpc_core::LoadBalancingPolicy::ChannelControlHelper* helper,
    grpc_pollset_set* interested_parties,
    std::shared_ptr<grpc_core::WorkSerializer> work_serializer, Observer* observer)
    : policy_name_(policy_name),
      helper_(helper),
      interested_parties_(interested_parties),
      work_serializer_(std::move(work_serializer)),
      observer_(observer) {}

void EndpointList::SetHealthPollingLocked(absl::optional<HealthCheckParams> params) {
  if (params != polling_) polling_changed_ = true;
  polling_ = std::move(params);
}

EndpointList::~EndpointList() { ShutdownLocked(); }

void EndpointList::CountLocked(grpc_connectivity_state state, int delta) {
  size_t* counter = state == GRPC_CHANNEL_READY ? &num_ready_
                    : state == GRPC_CHANNEL_TRANSIENT_FAILURE
                        ? &num_transient_failure_
                        : &num_connecting_;
  if (delta > 0) {
    ++*counter;
  } else {
    --*counter;
  }
}

bool EndpointList::HealthSettingsChangedLocked(const grpc_core::ChannelArgs& args) {
  absl::optional<std::string> health_check_service_name =
      args.GetOwnedString(kHealthCheckServiceNameArg);
  bool inhibit_health_checking =
      args.GetBool(GRPC_ARG_INHIBIT_HEALTH_CHECKING).value_or(false);
  const bool changed = health_check_service_name != health_check_service_name_ ||
                       inhibit_health_checking != inhibit_health_checking_ || polling_changed_;
  polling_changed_ = false;
  health_check_service_name_ = std::move(health_check_service_name);
  inhibit_health_checking_ = inhibit_health_checking;
  return changed;
}

void EndpointList::UpdateLocked(const grpc_core::ServerAddressList& addresses,
                                const grpc_core::ChannelArgs& args) {
  // The subchannel's health watch is fixed at creation, so a changed
  // healthCheckConfig can only take effect on new subchannels.
  const bool recreate_all = HealthSettingsChangedLocked(args);

  // An endpoint can report synchronously while the list is being rebuilt
  // (a refused subchannel fails at once): the owner must not build a picker
  // then, from a list and a per-update state (a hash policy's ring) that do
  // not match yet. It publishes once the update is done.
  updating_ = true;
  const bool had_ready = num_ready_ > 0 || !retained_.empty();
  std::vector<grpc_core::RefCountedPtr<Endpoint>> old_endpoints =
      std::move(endpoints_);
  absl::flat_hash_map<std::string, Endpoint*> old_by_address =
      std::move(by_address_);
  endpoints_.clear();
  by_address_.clear();
  endpoints_.reserve(addresses.size());
  by_address_.reserve(addresses.size());

  // Retained endpoints listed again come back as they are (connection, state
  // and in-flight count), instead of as new endpoints.
  absl::flat_hash_map<std::string, grpc_core::RefCountedPtr<Endpoint>> retained_by_address =
      TakeRetainedLocked();

  std::vector<Endpoint*> to_start;
  for (const grpc_core::ServerAddress& address : addresses) {
    std::string text = AddressText(address);
    if (by_address_.contains(text)) continue;  // Listed twice: one endpoint.
    if (auto r = retained_by_address.find(text);
        !recreate_all && r != retained_by_address.end() && r->second->address() == address) {
      CountLocked(r->second->state(), +1);
      by_address_.emplace(std::move(text), r->second.get());
      endpoints_.push_back(std::move(r->second));
      retained_by_address.erase(r);
      continue;
    }
    auto old = old_by_address.find(text);
    if (!recreate_all && old != old_by_address.end() &&
        old->second->address() == address) {
      endpoints_.push_back(old->second->Ref());
      by_address_.emplace(std::move(text), old->second);
      old_by_address.erase(old);  // What stays in the map was removed.
      continue;
    }
    auto endpoint =
        grpc_core::MakeRefCounted<Endpoint>(this, address, text);
    CountLocked(endpoint->state(), +1);
    to_start.push_back(endpoint.get());
    by_address_.emplace(std::move(text), endpoint.get());
    endpoints_.push_back(std::move(endpoint));
  }

  for (auto& [text, endpoint] : retained_by_address) retained_.push_back(std::move(endpoint));
  RetireRemovedLocked(std::move(old_endpoints), old_by_address, had_ready);
  for (Endpoint* endpoint : to_start) endpoint->StartWatchingLocked(args);
  MaybeReleaseRetainedLocked();
  updating_ = false;
}

absl::flat_hash_map<std::string, grpc_core::RefCountedPtr<Endpoint>>
EndpointList::TakeRetainedLocked() {
  absl::flat_hash_map<std::string, grpc_core::RefCountedPtr<Endpoint>> out;
  for (auto& endpoint : retained_) {
    std::string text = endpoint->address_text();
    out.emplace(std::move(text), std::move(endpoint));
  }
  retained_.clear();
  return out;
}

// Endpoints the update removed (those still in `removed`). The READY ones
// may be retained (see the header); the rest go now, and their in-flight
// calls finish on their connections, which the subchannel keeps until the
// calls end.
void EndpointList::RetireRemovedLocked(
    std::vector<grpc_core::RefCountedPtr<Endpoint>> old_endpoints,
    const absl::flat_hash_map<std::string, Endpoint*>& removed, bool had_ready) {
  for (auto& endpoint : old_endpoints) {
    auto it = removed.find(endpoint->address_text());
    if (it == removed.end() || it->second != endpoint.get()) continue;
    CountLocked(endpoint->state(), -1);
    if (had_ready && endpoint->state() == GRPC_CHANNEL_READY) {
      retained_.push_back(std::move(endpoint));
    } else {
      endpoint->ShutdownLocked();
    }
  }
}

void EndpointList::MaybeReleaseRetainedLocked() {
  if (retained_.empty()) return;
  const bool release_all = num_ready_ > 0 || endpoints_.empty() ||
                           num_transient_failure_ == endpoints_.size();
  std::vector<grpc_core::RefCountedPtr<Endpoint>> keep;
  for (auto& endpoint : retained_) {
    if (release_all || endpoint->state() != GRPC_CHANNEL_READY) {
      endpoint->ShutdownLocked();
    } else {
      keep.push_back(std::move(endpoint));
    }
  }
  retained_ = std::move(keep);
}

void EndpointList::OnEndpointStateChangeLocked(
    Endpoint* endpoint, grpc_connectivity_state old_state,
    grpc_connectivity_state new_state) {
  auto it = by_address_.find(endpoint->address_text());
  const bool current = it != by_address_.end() && it->second == endpoint;
  if (current) {
    CountLocked(old_state, -1);
    CountLocked(new_state, +1);
    if (new_state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      last_failure_ = endpoint->last_failure();
    }
  }
  MaybeReleaseRetainedLocked();
  if (!updating_) observer_->OnEndpointsChangedLocked();
}

void EndpointList::ShutdownLocked() {
  for (auto& endpoint : endpoints_) endpoint->ShutdownLocked();
  for (auto& endpoint : retained_) endpoint->ShutdownLocked();
  endpoints_.clear();
  by_address_.clear();
  retained_.clear();
  num_ready_ = num_connecting_ = num_transient_failure_ = 0;
}

void EndpointList::ResetBackoffLocked() {
  for (auto& endpoint : endpoints_) {
    if (endpoint->subchannel() != nullptr) endpoint->subchannel()->ResetBackoff();
  }
}

std::vector<Endpoint*> EndpointList::ReadyEndpoints() const {
  std::vector<Endpoint*> ready;
  if (num_ready_ > 0) {
    ready.reserve(num_ready_);
    for (const auto& endpoint : endpoints_) {
      if (endpoint->state() == GRPC_CHANNEL_READY) ready.push_back(endpoint.get());
    }
  } else {
    for (const auto& endpoint : retained_) ready.push_back(endpoint.get());
  }
  return ready;
}

grpc_connectivity_state EndpointList::AggregateState() const {
  if (num_ready_ > 0 || !retained_.empty()) return GRPC_CHANNEL_READY;
  if (num_connecting_ > 0) return GRPC_CHANNEL_CONNECTING;
  return GRPC_CHANNEL_TRANSIENT_FAILURE;
}

}  // namespace lbkit::policies
