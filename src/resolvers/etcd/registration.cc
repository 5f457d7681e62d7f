// lbkit::EtcdRegistration: one background thread per registration, making
// blocking calls (BlockingClient) one at a time: grant a lease, put the key
// with it, then a keepalive every TTL/3 until the lease is lost (grant and
// put again) or the registration is destroyed (revoke: the key goes at once).

#include "lbkit/etcd.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <ratio>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/endpoint_attributes.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/etcd/etcd_client.h"
#include "resolvers/etcd/etcd_resolver.h"

namespace lbkit {

using Clock = std::chrono::steady_clock;

class EtcdRegistration::Impl {
 public:
  Impl(Options options, std::string key, std::string value)
      : options_(std::move(options)), key_(std::move(key)), value_(std::move(value)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~Impl() {
    {
      // The call in progress is cancelled under the lock the thread takes
      // to see stopping_: the revoke it starts after that is not.
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      cv_.SignalAll();
      if (client_ != nullptr) client_->CancelCurrent();
    }
    thread_.join();
  }

  absl::Status WaitRegistered(std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
    while (registrations_ == 0 && !stopping_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (registrations_ > 0) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat(
        "lbkit::EtcdRegistration: ", key_, " not registered after ", timeout.count(), " ms",
        last_error_.empty() ? "" : "; last error: ", last_error_));
  }

  const std::string& key() const { return key_; }
  int registrations() const {
    absl::MutexLock lock(&mu_);
    return registrations_;
  }

 private:
  bool stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Sleeps, or returns true at once when the registration is stopping.
  bool SleepFor(std::chrono::milliseconds duration) {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::FromChrono(duration);
    while (!stopping_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    return stopping_;
  }

  void Fail(absl::string_view what, const grpc::Status& status, absl::string_view detail = "") {
    const std::string message =
        absl::StrCat(what, ": ", status.ok() ? std::string(detail) : status.error_message());
    absl::MutexLock lock(&mu_);
    if (stopping_) return;  // calls cancelled by the stop are not errors
    if (message != last_error_) {
      gpr_log(GPR_ERROR, "lbkit::EtcdRegistration %s: %s", key_.c_str(), message.c_str());
      last_error_ = message;
    }
  }

  // Grants a lease and writes the key with it; the lease's ID, or 0.
  int64_t Register(int64_t* ttl_seconds) {
    etcdpb::LeaseGrantRequest grant;
    grant.set_ttl(options_.ttl.count());
    etcdpb::LeaseGrantResponse granted;
    grpc::Status status = client_->Call(etcd::kLeaseGrantMethod, grant, &granted, kCallTimeout);
    if (!status.ok() || !granted.error().empty()) {
      Fail("granting a lease", status, granted.error());
      return 0;
    }
    // A put that failed (or was cancelled by a stop) may still have been
    // applied: revoking its lease takes the key with it either way.
    if (stopping() || !Put(granted.id())) {
      Revoke(granted.id());
      return 0;
    }
    *ttl_seconds = std::max<int64_t>(granted.ttl(), 1);
    absl::MutexLock lock(&mu_);
    ++registrations_;
    last_error_.clear();
    cv_.SignalAll();
    return granted.id();
  }

  bool Put(int64_t lease) {
    etcdpb::PutRequest put;
    put.set_key(key_);
    put.set_value(value_);
    put.set_lease(lease);
    etcdpb::PutResponse done;
    const grpc::Status status = client_->Call(etcd::kPutMethod, put, &done, kCallTimeout);
    if (!status.ok()) Fail("writing the key", status);
    return status.ok();
  }

  void Revoke(int64_t lease) {
    etcdpb::LeaseRevokeRequest revoke;
    revoke.set_id(lease);
    etcdpb::LeaseRevokeResponse revoked;
    const grpc::Status status =
        client_->Call(etcd::kLeaseRevokeMethod, revoke, &revoked, std::chrono::milliseconds(2000));
    if (!status.ok()) Fail("revoking the lease", status);
  }

  // Someone else may delete the key, or overwrite it without our lease: the
  // lease then lives on but no longer lists this server. Written again.
  void EnsureKey(int64_t lease) {
    etcdpb::RangeRequest range;
    range.set_key(key_);
    etcdpb::RangeResponse found;
    if (!client_->Call(etcd::kRangeMethod, range, &found, kCallTimeout).ok()) return;
    if (found.kvs_size() == 1 && found.kvs(0).lease() == lease &&
        found.kvs(0).value() == value_) {
      return;
    }
    gpr_log(GPR_INFO, "lbkit::EtcdRegistration %s: the key was %s by someone else; writing it "
            "again", key_.c_str(), found.kvs_size() == 0 ? "deleted" : "overwritten");
    Put(lease);
  }

  // The channel is made here, not in Start(): member names that do not
  // resolve yet (DNS not ready at boot) are retried like any etcd error.
  bool Connect(std::chrono::milliseconds* backoff) {
    while (!stopping()) {
      auto channel = etcd::CreateEtcdChannel(options_.etcd_endpoints);
      if (channel.ok()) {
        auto client = std::make_unique<etcd::BlockingClient>(*std::move(channel));
        absl::MutexLock lock(&mu_);
        client_ = std::move(client);
        return true;
      }
      Fail("connecting", grpc::Status::OK, channel.status().message());
      if (SleepFor(*backoff)) return false;
      *backoff = std::min(*backoff * 2, std::chrono::milliseconds(5000));
    }
    return false;
  }

  void Run() {
    std::chrono::milliseconds backoff{100};
    if (!Connect(&backoff)) return;
    int64_t lease = 0;
    while (!stopping()) {
      int64_t ttl = 0;
      lease = Register(&ttl);
      if (lease == 0) {
        if (SleepFor(backoff)) break;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      backoff = std::chrono::milliseconds(100);
      if (registrations() > 1) {
        gpr_log(GPR_INFO, "lbkit::EtcdRegistration %s: registered again (lease %llx)",
                key_.c_str(), static_cast<unsigned long long>(lease));
      }
      // Three keepalives per TTL, timed from the last one that worked, each
      // bounded by a third of the TTL: one lost to a slow member still
      // leaves time for the next before the lease runs out.
      const auto period = std::max(std::chrono::milliseconds(ttl * 1000 / 3),
                                   std::chrono::milliseconds(300));
      const auto attempt_timeout = std::min(period, std::chrono::milliseconds(3000));
      auto last_alive = Clock::now();
      auto next = last_alive + period;
      while (!SleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::max(next - Clock::now(), Clock::duration::zero())))) {
        int64_t remaining = 0;
        const grpc::Status status = client_->KeepAliveOnce(lease, &remaining, attempt_timeout);
        if (status.ok() && remaining > 0) {
          last_alive = Clock::now();
          next = last_alive + period;
          EnsureKey(lease);
          continue;
        }
        next = Clock::now() + std::chrono::milliseconds(100);  // retry soon
        if (status.ok()) {
          // etcd answers TTL 0 for a lease it no longer has.
          Fail("keepalive", status, "the lease is gone; registering again");
          lease = 0;
          break;
        }
        Fail("keepalive", status);
        if (Clock::now() - last_alive > std::chrono::seconds(ttl)) {
          lease = 0;  // certainly expired by now: start over
          break;
        }
      }
    }
    // Graceful stop: the key goes now, not a TTL from now.
    if (lease != 0) Revoke(lease);
  }

  // Short: a member that has just lost its leader holds a request until it
  // times out (etcd's own limit is about 5 s); another attempt, possibly on
  // another member, does better than waiting.
  static constexpr std::chrono::milliseconds kCallTimeout{2000};

  const Options options_;
  const std::string key_;
  const std::string value_;
  // Set once by the thread (under mu_ for the destructor's cancel).
  std::unique_ptr<etcd::BlockingClient> client_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<EtcdRegistration>> EtcdRegistration::Start(Options options) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("lbkit::EtcdRegistration: ", what));
  };
  std::string host;
  uint16_t port = 0;
  if (options.etcd_endpoints.empty()) return bad("etcd_endpoints is empty");
  for (absl::string_view endpoint : absl::StrSplit(options.etcd_endpoints, ',')) {
    if (absl::Status s = resolvers::SplitHostPort(endpoint, &host, &port); !s.ok()) {
      return bad(absl::StrCat("etcd endpoint \"", endpoint, "\": ", s.message()));
    }
  }
  if (options.prefix.empty() || options.prefix == "/") {
    return bad("prefix must name a key prefix, e.g. /services/greeter/");
  }
  if (absl::Status s = resolvers::SplitHostPort(options.address, &host, &port); !s.ok()) {
    return bad(absl::StrCat("address \"", options.address, "\": ", s.message()));
  }
  internal::Locality locality;
  if (!options.locality.empty()) {
    auto parsed = resolvers::ParseLocality(options.locality);
    if (!parsed.ok()) {
      return bad(absl::StrCat("locality \"", options.locality, "\": ",
                              parsed.status().message()));
    }
    locality = *parsed;
  }
  if (options.weight < 1 || options.weight > internal::EndpointAttributes::kMaxWeight) {
    return bad(absl::StrCat("weight must be in [1, ", internal::EndpointAttributes::kMaxWeight, "], not ",
                            options.weight));
  }
  if (options.ttl < std::chrono::seconds(1)) return bad("ttl must be at least 1 s");

  nlohmann::json value = {{"address", options.address},
                          {"weight", static_cast<int64_t>(options.weight)}};
  if (!options.locality.empty()) {
    value["locality"] = {
        {"region", locality.region}, {"zone", locality.zone}, {"subZone", locality.sub_zone}};
  }
  if (!options.labels.empty()) value["labels"] = options.labels;
  std::string key = resolvers::NormalizeEtcdPrefix(options.prefix) + options.address;
  auto impl = std::make_unique<Impl>(std::move(options), std::move(key),
                                     value.dump());
  return std::unique_ptr<EtcdRegistration>(new EtcdRegistration(std::move(impl)));
}

EtcdRegistration::EtcdRegistration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdRegistration::~EtcdRegistration() = default;

absl::Status EtcdRegistration::WaitRegistered(std::chrono::milliseconds timeout) {
  return impl_->WaitRegistered(timeout);
}
const std::string& EtcdRegistration::key() const { return impl_->key(); }
int EtcdRegistration::registrations() const { return impl_->registrations(); }

}  // namespace lbkit
