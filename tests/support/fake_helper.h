// A fake ChannelControlHelper and fake subchannels for policy tests: the test
// creates a real lbkit policy through gRPC's registry, drives each
// subchannel's connectivity by hand and inspects what the policy reported.
// Modelled on gRPC's lb_policy_test_lib.h of later versions.

#ifndef LBKIT_TESTS_SUPPORT_FAKE_HELPER_H_
#define LBKIT_TESTS_SUPPORT_FAKE_HELPER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <grpc/event_engine/event_engine.h>

#include "absl/strings/str_cat.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/clock.h"
#include "src/core/lib/address_utils/parse_address.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"
#include "src/core/lib/resolver/server_address.h"
#include "src/core/lib/uri/uri_parser.h"

namespace lbkit::testing {

class FakeSubchannel : public grpc_core::SubchannelInterface {
 public:
  FakeSubchannel(std::string address, grpc_core::ChannelArgs args)
      : address_(std::move(address)), args_(std::move(args)) {}

  void WatchConnectivityState(
      std::unique_ptr<ConnectivityStateWatcherInterface> watcher) override {
    watchers_.insert(watcher.get());
    owned_.push_back(std::move(watcher));
  }
  void CancelConnectivityStateWatch(
      ConnectivityStateWatcherInterface* watcher) override {
    watchers_.erase(watcher);
    ++cancelled_watches_;
  }
  void RequestConnection() override { ++connection_requests_; }
  void ResetBackoff() override { ++backoff_resets_; }
  void AddDataWatcher(std::unique_ptr<DataWatcherInterface>) override {}

  // Delivers a state change to every live watcher, as the channel would on
  // the policy's WorkSerializer.
  void SetState(grpc_connectivity_state state,
                absl::Status status = absl::OkStatus()) {
    std::vector<ConnectivityStateWatcherInterface*> watchers(watchers_.begin(),
                                                             watchers_.end());
    for (auto* w : watchers) w->OnConnectivityStateChange(state, status);
  }

  const std::string& address() const { return address_; }
  const grpc_core::ChannelArgs& args() const { return args_; }
  size_t num_watchers() const { return watchers_.size(); }
  int cancelled_watches() const { return cancelled_watches_; }
  int connection_requests() const { return connection_requests_; }
  int backoff_resets() const { return backoff_resets_; }

 private:
  std::string address_;
  grpc_core::ChannelArgs args_;
  std::set<ConnectivityStateWatcherInterface*> watchers_;
  std::vector<std::unique_ptr<ConnectivityStateWatcherInterface>> owned_;
  int cancelled_watches_ = 0;
  int connection_requests_ = 0;
  int backoff_resets_ = 0;
};

// An EventEngine whose timers fire only when the test advances its clock,
// on the test thread. Nothing else of an EventEngine is used by policies.
// Its clock is also the policies' (policies/common/clock.h).
class FakeEventEngine : public grpc_event_engine::experimental::EventEngine,
                        public policies::PolicyClock {
 public:
  int64_t NowNanos() const override { return now_ns_.load(std::memory_order_relaxed); }
  bool UseAsPolicyClock() const override { return policy_clock; }
  // False: policies created from now on read the steady clock (benchmarks).
  bool policy_clock = true;

  TaskHandle RunAfter(Duration when, absl::AnyInvocable<void()> closure) override {
    const intptr_t id = ++next_id_;
    timers_.emplace(id, Timer{now_ + when, std::move(closure)});
    return TaskHandle{{id, 0}};
  }
  TaskHandle RunAfter(Duration when, Closure* closure) override {
    return RunAfter(when, [closure] { closure->Run(); });
  }
  bool Cancel(TaskHandle handle) override { return timers_.erase(handle.keys[0]) > 0; }
  void Run(Closure* closure) override { closure->Run(); }
  void Run(absl::AnyInvocable<void()> closure) override { closure(); }
  bool IsWorkerThread() override { return false; }
  std::unique_ptr<DNSResolver> GetDNSResolver(const DNSResolver::ResolverOptions&) override {
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Listener>> CreateListener(
      Listener::AcceptCallback, absl::AnyInvocable<void(absl::Status)>,
      const grpc_event_engine::experimental::EndpointConfig&,
      std::unique_ptr<grpc_event_engine::experimental::MemoryAllocatorFactory>) override {
    return absl::UnimplementedError("FakeEventEngine");
  }
  ConnectionHandle Connect(OnConnectCallback, const ResolvedAddress&,
                           const grpc_event_engine::experimental::EndpointConfig&,
                           grpc_event_engine::experimental::MemoryAllocator, Duration) override {
    return ConnectionHandle{{0, 0}};
  }
  bool CancelConnect(ConnectionHandle) override { return false; }

  // Moves the clock forward by `d`, firing every timer that falls due, in
  // order, each inside an ExecCtx as gRPC would.
  void Advance(Duration d) {
    const Duration target = now_ + d;
    while (true) {
      auto next = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.due <= target && (next == timers_.end() || it->second.due < next->second.due)) {
          next = it;
        }
      }
      if (next == timers_.end()) break;
      SetNow(next->second.due);
      auto closure = std::move(next->second.closure);
      timers_.erase(next);
      closure();
    }
    SetNow(target);
  }
  size_t pending() const { return timers_.size(); }

 private:
  struct Timer {
    Duration due;
    absl::AnyInvocable<void()> closure;
  };
  void SetNow(Duration now) {
    now_ = now;
    now_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
                  std::memory_order_relaxed);
  }

  Duration now_{0};
  // now_ for pickers and call trackers on other threads.
  std::atomic<int64_t> now_ns_{0};
  intptr_t next_id_ = 0;
  std::map<intptr_t, Timer> timers_;
};

// What the fake helper saw; outlives the helper, which the policy owns.
struct HelperRecord {
  // Every subchannel created, in creation order.
  std::vector<grpc_core::RefCountedPtr<FakeSubchannel>> created;
  grpc_connectivity_state state = GRPC_CHANNEL_IDLE;
  absl::Status status;
  std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelPicker> picker;
  int state_updates = 0;
  int reresolution_requests = 0;
  // Addresses CreateSubchannel refuses (returns null for), as a channel
  // does while it shuts down.
  std::set<std::string> refuse_subchannels;
  // Timers of the policy under test; advance with event_engine.Advance().
  FakeEventEngine event_engine;

  // The most recently created subchannel for an address, or null.
  FakeSubchannel* Latest(absl::string_view address) const {
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      if ((*it)->address() == address) return it->get();
    }
    return nullptr;
  }
  size_t CountCreated(absl::string_view address) const {
    size_t n = 0;
    for (const auto& s : created) n += s->address() == address;
    return n;
  }
};

class FakeHelper : public grpc_core::LoadBalancingPolicy::ChannelControlHelper {
 public:
  explicit FakeHelper(HelperRecord* record) : record_(record) {}

  grpc_core::RefCountedPtr<grpc_core::SubchannelInterface> CreateSubchannel(
      grpc_core::ServerAddress address,
      const grpc_core::ChannelArgs& args) override {
    auto text = grpc_sockaddr_to_string(&address.address(), false);
    if (text.ok() && record_->refuse_subchannels.count(*text) != 0) return nullptr;
    auto subchannel = grpc_core::MakeRefCounted<FakeSubchannel>(
        text.ok() ? *text : "?", args);
    record_->created.push_back(subchannel);
    return subchannel;
  }
  void UpdateState(grpc_connectivity_state state, const absl::Status& status,
                   std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelPicker>
                       picker) override {
    record_->state = state;
    record_->status = status;
    record_->picker = std::move(picker);
    ++record_->state_updates;
  }
  void RequestReresolution() override { ++record_->reresolution_requests; }
  absl::string_view GetAuthority() override { return "lbkit.test"; }
  grpc_event_engine::experimental::EventEngine* GetEventEngine() override {
    return &record_->event_engine;
  }
  void AddTraceEvent(TraceSeverity, absl::string_view) override {}

 private:
  HelperRecord* record_;
};

// Request headers for a pick.
class FakeMetadata : public grpc_core::LoadBalancingPolicy::MetadataInterface {
 public:
  explicit FakeMetadata(std::map<std::string, std::string> headers = {})
      : headers_(std::move(headers)) {}
  void Add(absl::string_view key, absl::string_view value) override {
    headers_[std::string(key)] = std::string(value);
  }
  std::vector<std::pair<std::string, std::string>> TestOnlyCopyToVector() override {
    return {headers_.begin(), headers_.end()};
  }
  absl::optional<absl::string_view> Lookup(absl::string_view key,
                                           std::string* /*buffer*/) const override {
    auto it = headers_.find(std::string(key));
    if (it == headers_.end()) return absl::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, std::string> headers_;
};

// "127.0.0.1:1" -> a ServerAddress.
inline grpc_core::ServerAddress MakeAddress(absl::string_view host_port,
                                            grpc_core::ChannelArgs args = {}) {
  auto uri = grpc_core::URI::Parse(absl::StrCat("ipv4:", host_port));
  GPR_ASSERT(uri.ok());
  grpc_resolved_address resolved;
  GPR_ASSERT(grpc_parse_uri(*uri, &resolved));
  return grpc_core::ServerAddress(resolved, args);
}

inline grpc_core::ServerAddressList MakeAddresses(
    const std::vector<std::string>& host_ports) {
  grpc_core::ServerAddressList list;
  for (const auto& hp : host_ports) list.push_back(MakeAddress(hp));
  return list;
}

// Parses `[{"<policy>": <config>}]` through gRPC's registry, as the channel
// does with a service config's loadBalancingConfig.
inline absl::StatusOr<
    grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config>>
ParseConfig(absl::string_view policy, absl::string_view config_json) {
  auto json = grpc_core::Json::Parse(
      absl::StrCat("[{\"", policy, "\":", config_json, "}]"));
  if (!json.ok()) return json.status();
  return grpc_core::CoreConfiguration::Get()
      .lb_policy_registry()
      .ParseLoadBalancingConfig(*json);
}

// A policy under test with its fake helper. Calls run on the test thread,
// which stands in for the WorkSerializer.
class PolicyHarness {
 public:
  // `fake_clock`: the policy reads the fake EventEngine's clock (tests), or
  // the steady clock (benchmarks, measuring what a pick costs in production).
  explicit PolicyHarness(absl::string_view policy_name, bool fake_clock = true) {
    record_.event_engine.policy_clock = fake_clock;
    grpc_core::LoadBalancingPolicy::Args args;
    args.work_serializer = std::make_shared<grpc_core::WorkSerializer>();
    args.channel_control_helper = std::make_unique<FakeHelper>(&record_);
    policy_ = grpc_core::CoreConfiguration::Get()
                  .lb_policy_registry()
                  .CreateLoadBalancingPolicy(policy_name, std::move(args));
    GPR_ASSERT(policy_ != nullptr);
    policy_name_ = std::string(policy_name);
  }

  absl::Status Update(absl::StatusOr<grpc_core::ServerAddressList> addresses,
                      absl::string_view config_json = "{}",
                      grpc_core::ChannelArgs args = {}) {
    grpc_core::ExecCtx exec_ctx;
    auto config = ParseConfig(policy_name_, config_json);
    GPR_ASSERT(config.ok());
    grpc_core::LoadBalancingPolicy::UpdateArgs update;
    update.addresses = std::move(addresses);
    update.config = *config;
    update.args = std::move(args);
    return policy_->UpdateLocked(std::move(update));
  }

  void SetState(absl::string_view address, grpc_connectivity_state state,
                absl::Status status = absl::OkStatus()) {
    grpc_core::ExecCtx exec_ctx;
    FakeSubchannel* s = record_.Latest(address);
    GPR_ASSERT(s != nullptr);
    s->SetState(state, std::move(status));
  }

  // Picks once; returns the picked subchannel's address, or "" when the pick
  // did not complete (and then `result` says what it did). `metadata` is the
  // call's initial metadata (request headers), if any.
  std::string Pick(grpc_core::LoadBalancingPolicy::PickResult* result = nullptr,
                   grpc_core::LoadBalancingPolicy::MetadataInterface* metadata = nullptr,
                   absl::string_view path = "/lbkit.examples.Greeter/SayHello") {
    GPR_ASSERT(record_.picker != nullptr);
    // The queueing picker schedules ExitIdle through the ExecCtx.
    grpc_core::ExecCtx exec_ctx;
    grpc_core::LoadBalancingPolicy::PickArgs args{path, metadata, nullptr};
    auto r = record_.picker->Pick(args);
    std::string picked;
    if (auto* c = absl::get_if<grpc_core::LoadBalancingPolicy::PickResult::Complete>(
            &r.result)) {
      picked = static_cast<FakeSubchannel*>(c->subchannel.get())->address();
    }
    if (result != nullptr) *result = std::move(r);
    return picked;
  }

  // Picks n times and counts picks per address.
  std::map<std::string, int> PickMany(int n) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) ++counts[Pick()];
    return counts;
  }

  HelperRecord& record() { return record_; }
  grpc_core::LoadBalancingPolicy* policy() { return policy_.get(); }

  // Shuts the policy down (what the channel does when it goes away); the
  // record stays for inspection.
  void ShutdownPolicy() {
    grpc_core::ExecCtx exec_ctx;
    record_.picker.reset();
    policy_.reset();
  }

  ~PolicyHarness() { ShutdownPolicy(); }

 private:
  HelperRecord record_;
  std::string policy_name_;
  grpc_core::OrphanablePtr<grpc_core::LoadBalancingPolicy> policy_;
};

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_FAKE_HELPER_H_
