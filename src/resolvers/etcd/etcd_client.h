// lbkit's client of etcd's v3 gRPC API: just what discovery needs, over a
// grpc++ channel of its own, with the messages of proto/etcd/etcd_api.proto
// (etcd's field numbers, our package name) and the generic stub, so an
// application that links etcd's own generated code does not clash with us.
//
//   auto channel = CreateEtcdChannel("10.0.0.1:2379,10.0.0.2:2379");
//   auto watch = PrefixWatch::Start(*channel, "/services/greeter/",
//       [](const PrefixWatch::Snapshot& kvs) { ... },   // the whole prefix
//       [](const absl::Status& error) { ... });          // a failed attempt
//   ...
//   watch->Shutdown();
//
// PrefixWatch lists the prefix, then watches it from the listed revision;
// a broken watch stream is re-established from the last revision seen, a
// compacted revision triggers a full re-list. Its callbacks run on
// AsyncQueue()'s thread (common/async_queue.h) and must not block.

#ifndef LBKIT_RESOLVERS_ETCD_ETCD_CLIENT_H_
#define LBKIT_RESOLVERS_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <grpcpp/channel.h>
#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "etcd_api.pb.h"

namespace lbkit::etcd {

inline constexpr char kRangeMethod[] = "/etcdserverpb.KV/Range";
inline constexpr char kPutMethod[] = "/etcdserverpb.KV/Put";
inline constexpr char kDeleteRangeMethod[] = "/etcdserverpb.KV/DeleteRange";
inline constexpr char kCompactMethod[] = "/etcdserverpb.KV/Compact";
inline constexpr char kWatchMethod[] = "/etcdserverpb.Watch/Watch";
inline constexpr char kLeaseGrantMethod[] = "/etcdserverpb.Lease/LeaseGrant";
inline constexpr char kLeaseRevokeMethod[] = "/etcdserverpb.Lease/LeaseRevoke";
inline constexpr char kLeaseKeepAliveMethod[] = "/etcdserverpb.Lease/LeaseKeepAlive";

// The key just past every key that starts with `prefix` (etcd's range_end
// for a prefix): the last byte below 0xff incremented, the rest dropped.
std::string PrefixEnd(absl::string_view prefix);

// "HOST:PORT[,HOST:PORT...]" to a channel target. One name alone becomes
// "dns:///NAME:PORT" (gRPC follows it); otherwise names are resolved once,
// here, with the system resolver ("ipv4:a,b" or "ipv6:a,b"), leaving out
// (and logging) those that do not resolve. INVALID_ARGUMENT names a
// malformed endpoint; UNAVAILABLE says no endpoint resolved.
absl::StatusOr<std::string> EtcdChannelTarget(absl::string_view endpoints);

// A channel to the members listed: gRPC's round_robin over them, so a call
// goes to a member that is up; keepalive pings find a member that vanished
// without closing its connection.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateEtcdChannel(absl::string_view endpoints);

// Blocking unary calls, for the registration thread and tests: one call at
// a time on a private completion queue, each with its own deadline.
class BlockingClient {
 public:
  explicit BlockingClient(std::shared_ptr<grpc::Channel> channel);
  ~BlockingClient();

  grpc::Status Call(const char* method, const google::protobuf::Message& request,
                    google::protobuf::Message* response, std::chrono::milliseconds timeout);
  // One LeaseKeepAlive request and its reply on a short-lived stream.
  grpc::Status KeepAliveOnce(int64_t lease, int64_t* ttl, std::chrono::milliseconds timeout);
  // Cancels the call in progress, if any (later calls go ahead).
  void CancelCurrent();

 private:
  bool Await();
  void Begin(grpc::ClientContext* context);
  void End();

  grpc::GenericStub stub_;  // holds the channel
  grpc::CompletionQueue cq_;
  absl::Mutex mu_;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

class PrefixWatch : public std::enable_shared_from_this<PrefixWatch> {
 public:
  using Snapshot = std::map<std::string, std::string>;  // key -> value
  using OnChange = std::function<void(const Snapshot&)>;
  using OnError = std::function<void(const absl::Status&)>;

  static std::shared_ptr<PrefixWatch> Start(std::shared_ptr<grpc::Channel> channel,
                                            std::string prefix, OnChange on_change,
                                            OnError on_error);
  // Stops the watch. A callback already past its check may still run once
  // after this returns: callers keep their own "shut down" state (the
  // resolver does, through its Link).
  void Shutdown();

  // The member the watch stream is connected to ("ipv4:127.0.0.1:2379"),
  // empty when none is.
  std::string peer() const;
  // Full lists done (1 + re-lists after compaction or a cancelled watch).
  int lists() const;

 private:
  struct Stream;
  PrefixWatch(std::shared_ptr<grpc::Channel> channel, std::string prefix, OnChange on_change,
              OnError on_error);

  void List();
  void OnListed(const grpc::Status& status, const etcdpb::RangeResponse& reply);
  void Watch();
  void OnWatchReply(const std::shared_ptr<Stream>& stream);
  void OnStreamEnd(const std::shared_ptr<Stream>& stream, const grpc::Status& status);
  // Runs `next` after the current backoff, doubling it (100 ms to 5 s).
  void After(std::function<void()> next);
  void ReportError(const absl::Status& error);
  bool stopped() const;

  grpc::GenericStub stub_;  // holds the channel
  const std::string prefix_;
  const OnChange on_change_;
  const OnError on_error_;

  // Touched only on AsyncQueue()'s thread.
  Snapshot snapshot_;
  int64_t revision_ = 0;  // the last revision applied
  std::chrono::milliseconds backoff_{100};

  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<grpc::ClientContext> call_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
  std::string peer_ ABSL_GUARDED_BY(mu_);
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lbkit::etcd

#endif  // LBKIT_RESOLVERS_ETCD_ETCD_CLIENT_H_
