#include "policies/common/health_check.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/async_queue.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/iomgr/closure.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace lbkit::policies {

namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";
// Where a channel keeps its credentials in its args (GRPC_ARG_CHANNEL_CREDENTIALS
// in gRPC's security headers, which lbkit does not build against).
constexpr char kChannelCredentialsArg[] = "grpc.internal.channel_credentials";

// grpc.health.v1.HealthCheckRequest {string service = 1;}, encoded by hand:
// lbkit carries no generated code for the health proto.
grpc::ByteBuffer EncodeRequest(const std::string& service) {
  std::string bytes;
  if (!service.empty()) {
    bytes.push_back(0x0a);  // field 1, length-delimited
    for (size_t n = service.size(); ; n >>= 7) {
      if (n < 0x80) {
        bytes.push_back(static_cast<char>(n));
        break;
      }
      bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
    }
    bytes += service;
  }
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool ReadVarint(const uint8_t** p, const uint8_t* end, uint64_t* out) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    const uint8_t byte = *(*p)++;
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = value;
      return true;
    }
  }
  return false;
}

// HealthCheckResponse {ServingStatus status = 1;}: 0 UNKNOWN, 1 SERVING,
// 2 NOT_SERVING, 3 SERVICE_UNKNOWN. nullopt when the bytes are not a message.
absl::optional<uint64_t> DecodeStatus(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::nullopt;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* end = p + bytes.size();
  uint64_t status = 0;  // absent = UNKNOWN (proto3 default)
  while (p < end) {
    uint64_t key, value;
    if (!ReadVarint(&p, end, &key)) return absl::nullopt;
    switch (key & 7) {
      case 0:
        if (!ReadVarint(&p, end, &value)) return absl::nullopt;
        if ((key >> 3) == 1) status = value;
        break;
      case 1: p += 8; break;
      case 2:
        if (!ReadVarint(&p, end, &value) || value > static_cast<uint64_t>(end - p)) {
          return absl::nullopt;
        }
        p += value;
        break;
      case 5: p += 4; break;
      default: return absl::nullopt;
    }
  }
  if (p != end) return absl::nullopt;
  return status;
}

// The checks' own channel: a connection of its own (Envoy's health checker
// has one too: the checks must not share, or hold open, the connection that
// carries traffic), but the application channel's credentials, and its
// authority and TLS target name override, so a TLS or mTLS backend is
// checked as the application reaches it. The credentials travel in the
// policy's channel args (docs/grpc-internals.md, "Channel credentials").
std::shared_ptr<grpc::Channel> CheckChannel(const std::string& target,
                                            const grpc_core::ChannelArgs& channel_args,
                                            absl::string_view authority) {
  grpc_core::ChannelArgs args =
      grpc_core::ChannelArgs().Set(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!authority.empty()) args = args.Set(GRPC_ARG_DEFAULT_AUTHORITY, authority);
  if (auto name = channel_args.GetOwnedString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG)) {
    args = args.Set(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, *name);
  }
  // Held by `channel_args` for as long as this runs; grpc_channel_create
  // takes its own reference.
  auto* creds = static_cast<grpc_channel_credentials*>(
      channel_args.GetVoidPointer(kChannelCredentialsArg));
  grpc_channel_credentials* insecure = nullptr;
  if (creds == nullptr) insecure = grpc_insecure_credentials_create();
  grpc_channel* channel = grpc_channel_create(
      target.c_str(), creds != nullptr ? creds : insecure, args.ToC().get());
  if (insecure != nullptr) grpc_channel_credentials_release(insecure);
  return grpc::CreateChannelInternal("", channel, {});
}

const char* StatusName(uint64_t status) {
  switch (status) {
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
  }
}

}  // namespace

//
// Config
//

const grpc_core::JsonLoaderInterface* HealthCheckParams::JsonLoader(const grpc_core::JsonArgs&) {
  static const auto* loader =
      grpc_core::JsonObjectLoader<HealthCheckParams>()
          .OptionalField("serviceName", &HealthCheckParams::service_name)
          .OptionalField("mode", &HealthCheckParams::mode)
          .OptionalField("interval", &HealthCheckParams::interval)
          .OptionalField("timeout", &HealthCheckParams::timeout)
          .OptionalField("unhealthyThreshold", &HealthCheckParams::unhealthy_threshold)
          .OptionalField("healthyThreshold", &HealthCheckParams::healthy_threshold)
          .Finish();
  return loader;
}

void HealthCheckParams::JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                                     grpc_core::ValidationErrors* errors) {
  {
    grpc_core::ValidationErrors::ScopedField field(errors, ".mode");
    if (!errors->FieldHasErrors() && mode != "watch" && mode != "poll") {
      errors->AddError("must be \"watch\" or \"poll\"");
    }
  }
  for (auto [name, value] : {std::pair<const char*, grpc_core::Duration>{".interval", interval},
                             {".timeout", timeout}}) {
    grpc_core::ValidationErrors::ScopedField field(errors, name);
    if (!errors->FieldHasErrors() && value <= grpc_core::Duration::Zero()) {
      errors->AddError("must be greater than 0");
    }
  }
  for (auto [name, value] : {std::pair<const char*, uint32_t>{".unhealthyThreshold",
                                                               unhealthy_threshold},
                             {".healthyThreshold", healthy_threshold}}) {
    grpc_core::ValidationErrors::ScopedField field(errors, name);
    if (!errors->FieldHasErrors() && value < 1) errors->AddError("must be at least 1");
  }
}

//
// HealthPoller
//

struct HealthPoller::Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader;
};


HealthPoller::HealthPoller(std::string address, HealthCheckParams params,
                           const grpc_core::ChannelArgs& channel_args,
                           absl::string_view authority,
                           std::shared_ptr<grpc_core::WorkSerializer> serializer,
                           grpc_event_engine::experimental::EventEngine* event_engine,
                           OnChange on_change)
    : address_(std::move(address)),
      params_(std::move(params)),
      serializer_(std::move(serializer)),
      on_change_(std::move(on_change)),
      thresholds_(params_.unhealthy_threshold, params_.healthy_threshold),
      timer_(event_engine, serializer_) {
  // AddressText() gives "1.2.3.4:80", "[::1]:80", or a URI (unix:/path).
  const std::string target = absl::StartsWith(address_, "[")  ? "ipv6:" + address_
                             : absl::StrContains(address_, "/") ? address_
                                                                 : "ipv4:" + address_;
  channel_ = std::make_shared<grpc::GenericStub>(
      CheckChannel(target, channel_args, authority));
  CheckLocked();
}

HealthPoller::~HealthPoller() = default;

void HealthPoller::Orphan() {
  shutdown_ = true;
  on_change_ = nullptr;
  timer_.CancelLocked();
  Unref();
}

void HealthPoller::CheckLocked() {
  if (shutdown_) return;
  auto call = std::make_shared<Call>();
  call->context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(params_.timeout.millis()));
  call->request = EncodeRequest(params_.service_name);
  auto* stub = static_cast<grpc::GenericStub*>(channel_.get());
  call->reader = stub->PrepareUnaryCall(&call->context, kCheckMethod, call->request,
                                        internal::AsyncQueue());
  call->reader->StartCall();
  // On AsyncQueue()'s thread, not grpc++'s callback API (see async_queue.h).
  void* done = internal::OnDone([self = Ref(DEBUG_LOCATION, "Check"), call](bool) {
    const grpc::Status& status = call->status;
    bool healthy = false;
    absl::Status why;
    if (status.ok()) {
      const absl::optional<uint64_t> serving = DecodeStatus(call->response);
      healthy = serving.has_value() && *serving == 1;
      if (!healthy) {
        why = absl::UnavailableError(
            serving.has_value()
                ? absl::StrCat("health check: ", StatusName(*serving))
                : std::string("health check: the reply is not a HealthCheckResponse"));
      }
    } else if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      healthy = true;  // no health service: nothing says it is unhealthy
    } else {
      why = absl::UnavailableError(absl::StrCat("health check failed: ", status.error_message()));
    }
    const bool unimplemented = status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
    HealthPoller* poller = self.get();
    internal::RunOnWorkSerializer(poller->serializer_, [self, healthy, why, unimplemented]() {
      if (unimplemented && !self->logged_unimplemented_ && !self->shutdown_) {
        self->logged_unimplemented_ = true;
        gpr_log(GPR_INFO,
                "lbkit health check: %s does not implement grpc.health.v1.Health; "
                "treating it as healthy",
                self->address_.c_str());
      }
      self->OnResultLocked(healthy, why);
    });
  });
  call->reader->Finish(&call->response, &call->status, done);
}

void HealthPoller::OnResultLocked(bool healthy, absl::Status why) {
  if (shutdown_) return;
  if (thresholds_.Record(healthy) && on_change_) {
    // The callback may shut this poller down (its endpoint released), which
    // clears on_change_: call a copy.
    OnChange on_change = on_change_;
    on_change(thresholds_.state() == algorithms::HealthThresholds::State::kHealthy,
              std::move(why));
  }
  if (!shutdown_) ScheduleLocked();
}

void HealthPoller::ScheduleLocked() {
  // Orphan() cancels the timer on the WorkSerializer, so `this` is alive
  // whenever the callback runs.
  timer_.ArmLocked(params_.interval, [this] { CheckLocked(); });
}

}  // namespace lbkit::policies
