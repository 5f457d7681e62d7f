// Announcing a server in etcd, for clients that find it with lbkit-etcd.
//
// A server registers its address under a key prefix with a lease, which is
// kept alive in the background; the key disappears when the registration is
// destroyed (graceful shutdown: at once) or when the process dies (when the
// lease expires, `ttl` later). A lost lease (etcd restarted, a partition
// longer than the TTL) is noticed at the next keepalive and the key is
// written again under a new lease; a key deleted or overwritten by someone
// else while the lease lives is written again at the next keepalive.
//
//   lbkit::EtcdRegistration::Options options;
//   options.etcd_endpoints = "10.0.0.1:2379,10.0.0.2:2379";
//   options.prefix = "/services/greeter/";
//   options.address = "10.0.0.7:50051";
//   options.locality = "us-east1/us-east1-b";
//   auto registration = lbkit::EtcdRegistration::Start(options);
//   if (!registration.ok()) { ... bad options ... }
//   (*registration)->WaitRegistered(std::chrono::seconds(5));  // optional
//   ...
//   registration->reset();  // before the server stops taking calls
//
// Clients: lbkit-etcd://10.0.0.1:2379,10.0.0.2:2379/services/greeter/
// The key is PREFIX + ADDRESS; its value is the endpoint object of lbkit-file
// ({"address": ..., "locality": {...}, "weight": N, "labels": {...}}).

#ifndef LBKIT_ETCD_H_
#define LBKIT_ETCD_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lbkit {

class EtcdRegistration {
 public:
  struct Options {
    // "HOST:PORT[,HOST:PORT...]" of etcd's client URLs.
    std::string etcd_endpoints;
    // The key prefix clients watch; a trailing "/" is added if missing.
    std::string prefix;
    // The address clients connect to, "HOST:PORT" (IPv4, [IPv6] or a name).
    std::string address;
    // "region[/zone[/subZone]]", optional.
    std::string locality;
    uint32_t weight = 1;
    std::map<std::string, std::string> labels;
    // The lease's time to live: how long a dead server stays listed. etcd
    // raises values below its minimum (1.5 election timeouts, 2 s by
    // default).
    std::chrono::seconds ttl{10};
  };

  // Checks the options and starts registering in the background; returns
  // INVALID_ARGUMENT naming a bad option. etcd being unreachable is not an
  // error here: the registration keeps trying (WaitRegistered tells).
  static absl::StatusOr<std::unique_ptr<EtcdRegistration>> Start(Options options);

  // Revokes the lease, which deletes the key at once, and stops the
  // background thread: the etcd call in progress is cancelled, the revoke
  // waits at most 2 s for etcd (plus a member-name lookup in progress).
  ~EtcdRegistration();
  EtcdRegistration(const EtcdRegistration&) = delete;
  EtcdRegistration& operator=(const EtcdRegistration&) = delete;

  // OK once the key is written (now or earlier); DEADLINE_EXCEEDED with the
  // last etcd error if that takes longer than `timeout`.
  absl::Status WaitRegistered(std::chrono::milliseconds timeout);

  // PREFIX + ADDRESS.
  const std::string& key() const;
  // Times the key was written: 1 + re-registrations after a lost lease.
  int registrations() const;

  class Impl;

 private:
  explicit EtcdRegistration(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lbkit

#endif  // LBKIT_ETCD_H_
