#include "resolvers/etcd/etcd_client.h"

#include <algorithm>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/async_queue.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <ratio>
#include <sys/socket.h>
#include <type_traits>
#include <utility>
#include <vector>

namespace lbkit::etcd {

namespace {

grpc::ByteBuffer Encode(const google::protobuf::Message& message) {
  grpc::ByteBuffer buffer;
  bool own = false;
  // Serialising a well-formed message into memory cannot fail.
  (void)grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, &buffer, &own);
  return buffer;
}

bool Decode(grpc::ByteBuffer* buffer, google::protobuf::Message* message) {
  return grpc::SerializationTraits<google::protobuf::Message>::Deserialize(buffer, message).ok();
}

std::chrono::system_clock::time_point In(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

constexpr std::chrono::milliseconds kCallTimeout{10000};
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    const unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte 0xff (or empty): etcd's "\0" means "to the end of the keys".
  return std::string(1, '\0');
}

absl::StatusOr<std::string> EtcdChannelTarget(absl::string_view endpoints) {
  std::vector<std::string> v4, v6, unresolved;
  std::vector<absl::string_view> list = absl::StrSplit(endpoints, ',');
  int index = 0;
  for (absl::string_view endpoint : list) {
    ++index;
    std::string host;
    uint16_t port = 0;
    absl::Status split = resolvers::SplitHostPort(endpoint, &host, &port);
    if (!split.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint ", index, " (\"", endpoint, "\"): ", split.message()));
    }
    // One name alone (a Kubernetes Service, a DNS round robin): gRPC's DNS
    // resolver follows it, re-resolving when connections fail, so members
    // that move keep being found.
    if (list.size() == 1) {
      in6_addr scratch;
      if (inet_pton(AF_INET, host.c_str(), &scratch) != 1 &&
          inet_pton(AF_INET6, host.c_str(), &scratch) != 1) {
        return absl::StrCat("dns:///", endpoint);
      }
    }
    // Blocks on a name: callers keep this off the WorkSerializer.
    auto found = resolvers::LookupHost(host, port);
    if (!found.ok()) {
      unresolved.push_back(absl::StrCat(endpoint, " (", found.status().message(), ")"));
      continue;
    }
    for (const grpc_resolved_address& a : *found) {
      const auto* sa = reinterpret_cast<const sockaddr*>(a.addr);
      char text[INET6_ADDRSTRLEN] = {};
      if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text,
                  sizeof(text));
        v4.push_back(absl::StrCat(text, ":", port));
      } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text,
                  sizeof(text));
        v6.push_back(absl::StrCat("[", text, "]:", port));
      }
    }
  }
  if (v4.empty() && v6.empty()) {
    return absl::UnavailableError(absl::StrCat("no etcd endpoint resolves: ",
                                               absl::StrJoin(unresolved, ", ")));
  }
  if (!unresolved.empty()) {
    // The members that resolve are enough to start; the channel is made
    // again only if none does.
    gpr_log(GPR_ERROR, "lbkit-etcd: etcd endpoints that do not resolve, left out: %s",
            absl::StrJoin(unresolved, ", ").c_str());
  }
  // A channel target has one scheme: IPv4 when there is any (loopback and
  // most clusters), else IPv6.
  if (!v4.empty()) return absl::StrCat("ipv4:", absl::StrJoin(v4, ","));
  return absl::StrCat("ipv6:", absl::StrJoin(v6, ","));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateEtcdChannel(absl::string_view endpoints) {
  auto target = EtcdChannelTarget(endpoints);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // A list of 1,000 endpoints is well under gRPC's 4 MB default, but a
  // registry is not ours to size.
  args.SetMaxReceiveMessageSize(-1);
  // A member that is frozen or cut off never closes the connection: pings
  // find it. etcd accepts pings every 5 s or slower by default.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // A watch only reads after its first write, and gRPC stops pinging after
  // two pings without data sent (GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA):
  // without this, a frozen member behind a quiet prefix is never noticed.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // Not shared with the application's own channels to the same members.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), args);
}

//
// BlockingClient
//

BlockingClient::BlockingClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(std::move(channel)) {}

BlockingClient::~BlockingClient() {
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

bool BlockingClient::Await() {
  void* tag;
  bool ok = false;
  cq_.Next(&tag, &ok);
  return ok;
}

void BlockingClient::Begin(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  current_ = context;
}

void BlockingClient::End() {
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
}

void BlockingClient::CancelCurrent() {
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) current_->TryCancel();
}

grpc::Status BlockingClient::Call(const char* method, const google::protobuf::Message& request,
                                  google::protobuf::Message* response,
                                  std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(In(timeout));
  Begin(&context);
  grpc::ByteBuffer reply;
  grpc::Status status;
  auto call = stub_.PrepareUnaryCall(&context, method, Encode(request), &cq_);
  call->StartCall();
  call->Finish(&reply, &status, this);
  Await();
  End();
  if (status.ok() && !Decode(&reply, response)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("etcd's reply to ", method, " does not parse"));
  }
  return status;
}

grpc::Status BlockingClient::KeepAliveOnce(int64_t lease, int64_t* ttl,
                                           std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(In(timeout));
  Begin(&context);
  auto stream = stub_.PrepareCall(&context, kLeaseKeepAliveMethod, &cq_);
  stream->StartCall(this);
  bool ok = Await();
  etcdpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  if (ok) {
    stream->Write(Encode(request), this);
    ok = Await();
  }
  grpc::ByteBuffer reply;
  if (ok) {
    stream->Read(&reply, this);
    ok = Await();
  }
  // Half-close and finish whatever happened above, so the call ends cleanly.
  stream->WritesDone(this);
  Await();
  grpc::Status status;
  stream->Finish(&status, this);
  Await();
  End();
  if (!ok) {
    return status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "the keepalive stream ended without a reply")
                       : status;
  }
  etcdpb::LeaseKeepAliveResponse response;
  if (!Decode(&reply, &response)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "etcd's keepalive reply does not parse");
  }
  *ttl = response.ttl();
  return grpc::Status::OK;
}

//
// PrefixWatch
//

// One watch stream. Every operation's tag holds a reference, so the context
// and the buffers outlive the operations that use them.
struct PrefixWatch::Stream {
  std::shared_ptr<grpc::ClientContext> context = std::make_shared<grpc::ClientContext>();
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call;
  grpc::ByteBuffer reply;
  grpc::Status status;
  bool created = false;
  bool aborting = false;  // cancelled by us: replies still in flight are ignored
};

std::shared_ptr<PrefixWatch> PrefixWatch::Start(std::shared_ptr<grpc::Channel> channel,
                                                std::string prefix, OnChange on_change,
                                                OnError on_error) {
  std::shared_ptr<PrefixWatch> watch(new PrefixWatch(std::move(channel), std::move(prefix),
                                                     std::move(on_change),
                                                     std::move(on_error)));
  watch->List();
  return watch;
}

PrefixWatch::PrefixWatch(std::shared_ptr<grpc::Channel> channel, std::string prefix,
                         OnChange on_change, OnError on_error)
    : stub_(std::move(channel)),
      prefix_(std::move(prefix)),
      on_change_(std::move(on_change)),
      on_error_(std::move(on_error)) {}

void PrefixWatch::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  if (call_ != nullptr) call_->TryCancel();
  if (alarm_ != nullptr) alarm_->Cancel();
}

bool PrefixWatch::stopped() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

std::string PrefixWatch::peer() const {
  absl::MutexLock lock(&mu_);
  return peer_;
}

int PrefixWatch::lists() const {
  absl::MutexLock lock(&mu_);
  return lists_;
}

void PrefixWatch::ReportError(const absl::Status& error) {
  if (!stopped() && on_error_) on_error_(error);
}

void PrefixWatch::After(std::function<void()> next) {
  auto alarm = std::make_shared<grpc::Alarm>();
  const auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  // Set under the lock Shutdown() cancels under: never both at once.
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  alarm_ = alarm;
  alarm->Set(internal::AsyncQueue(), In(delay),
             internal::OnDone([self = shared_from_this(), alarm, next = std::move(next)](bool fired) {
               if (fired && !self->stopped()) next();
             }));
}

void PrefixWatch::List() {
  auto context = std::make_shared<grpc::ClientContext>();
  context->set_deadline(In(kCallTimeout));
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    call_ = context;
  }
  etcdpb::RangeRequest request;
  request.set_key(prefix_);
  request.set_range_end(PrefixEnd(prefix_));
  // The context first: members are destroyed in reverse order, and the
  // call lives in the context's arena.
  struct Pending {
    std::shared_ptr<grpc::ClientContext> context;
    grpc::ByteBuffer reply;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call;
  };
  auto pending = std::make_shared<Pending>();
  pending->context = std::move(context);
  pending->call = stub_.PrepareUnaryCall(pending->context.get(), kRangeMethod, Encode(request),
                                         internal::AsyncQueue());
  pending->call->StartCall();
  pending->call->Finish(
      &pending->reply, &pending->status,
      internal::OnDone([self = shared_from_this(), pending](bool) {
        etcdpb::RangeResponse response;
        grpc::Status status = pending->status;
        if (status.ok() && !Decode(&pending->reply, &response)) {
          status = grpc::Status(grpc::StatusCode::INTERNAL, "etcd's Range reply does not parse");
        }
        self->OnListed(status, response);
      }));
}

void PrefixWatch::OnListed(const grpc::Status& status, const etcdpb::RangeResponse& reply) {
  if (stopped()) return;
  if (!status.ok()) {
    ReportError(absl::UnavailableError(absl::StrCat("listing ", prefix_, ": ",
                                                    status.error_message(), " (",
                                                    static_cast<int>(status.error_code()), ")")));
    After([this] { List(); });
    return;
  }
  snapshot_.clear();
  for (const etcdpb::KeyValue& kv : reply.kvs()) snapshot_[kv.key()] = kv.value();
  revision_ = reply.header().revision();
  {
    absl::MutexLock lock(&mu_);
    ++lists_;
  }
  if (on_change_) on_change_(snapshot_);
  Watch();
}

void PrefixWatch::Watch() {
  auto stream = std::make_shared<Stream>();
  // Without it a member that has lost its quorum keeps the stream open and
  // silent; with it the stream fails and the watch moves to another member
  // (docs/etcd-notes.md).
  stream->context->AddMetadata("hasleader", "true");
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    call_ = stream->context;
  }
  stream->call = stub_.PrepareCall(stream->context.get(), kWatchMethod, internal::AsyncQueue());
  stream->call->StartCall(internal::OnDone([self = shared_from_this(), stream](bool ok) {
    if (!ok) {
      stream->call->Finish(&stream->status, internal::OnDone([self, stream](bool) {
        self->OnStreamEnd(stream, stream->status);
      }));
      return;
    }
    {
      absl::MutexLock lock(&self->mu_);
      self->peer_ = stream->context->peer();
    }
    etcdpb::WatchRequest request;
    etcdpb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(self->prefix_);
    create->set_range_end(PrefixEnd(self->prefix_));
    create->set_start_revision(self->revision_ + 1);
    // A failed write shows as a failed read, which ends the stream.
    stream->call->Write(Encode(request), internal::OnDone([stream](bool) {}));
    self->OnWatchReply(stream);
  }));
}

// Reads the next reply; called once per reply.
void PrefixWatch::OnWatchReply(const std::shared_ptr<Stream>& stream) {
  stream->call->Read(&stream->reply, internal::OnDone([self = shared_from_this(), stream](bool ok) {
    if (!ok) {
      stream->call->Finish(&stream->status, internal::OnDone([self, stream](bool) {
        self->OnStreamEnd(stream, stream->status);
      }));
      return;
    }
    if (self->stopped() || stream->aborting) {
      stream->aborting = true;
      stream->context->TryCancel();
      self->OnWatchReply(stream);  // drains to the failed read, then Finish
      return;
    }
    etcdpb::WatchResponse response;
    if (!Decode(&stream->reply, &response)) {
      self->ReportError(absl::InternalError("etcd's Watch reply does not parse"));
      stream->aborting = true;
      stream->context->TryCancel();
      self->OnWatchReply(stream);
      return;
    }
    if (response.compact_revision() != 0 || response.canceled()) {
      // The revision to resume from is gone (compacted), or etcd refused the
      // watch: only a full list is correct now.
      self->ReportError(absl::UnavailableError(
          response.compact_revision() != 0
              ? absl::StrCat("watch of ", self->prefix_, " from revision ", self->revision_ + 1,
                             ": compacted up to ", response.compact_revision(), "; listing again")
              : absl::StrCat("watch of ", self->prefix_, " cancelled by etcd: ",
                             response.cancel_reason(), "; listing again")));
      self->revision_ = 0;  // OnStreamEnd lists when there is no revision
      stream->aborting = true;
      stream->context->TryCancel();
      self->OnWatchReply(stream);
      return;
    }
    if (response.created()) {
      stream->created = true;
      self->backoff_ = kMinBackoff;  // a working stream resets the backoff
    }
    bool changed = false;
    for (const etcdpb::Event& event : response.events()) {
      if (event.type() == etcdpb::Event::PUT) {
        self->snapshot_[event.kv().key()] = event.kv().value();
      } else {
        self->snapshot_.erase(event.kv().key());
      }
      self->revision_ = std::max(self->revision_, event.kv().mod_revision());
      changed = true;
    }
    // Only events move the resume point: a reply's header revision can be
    // ahead of events still to come (the "created" reply while catching up).
    if (changed && self->on_change_ && !self->stopped()) self->on_change_(self->snapshot_);
    self->OnWatchReply(stream);
  }));
}

void PrefixWatch::OnStreamEnd(const std::shared_ptr<Stream>& stream, const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    peer_.clear();
  }
  if (revision_ == 0) {
    After([this] { List(); });
    return;
  }
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    ReportError(absl::UnavailableError(absl::StrCat("watch of ", prefix_, " broke: ",
                                                    status.error_message(),
                                                    "; resuming from revision ",
                                                    revision_ + 1)));
  }
  After([this] { Watch(); });
}

}  // namespace lbkit::etcd
