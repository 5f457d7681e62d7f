#include "lbkit/channel.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "grpc_internal/abi_guard.h"
#include "lbkit/lbkit.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/service_config/service_config_impl.h"

namespace lbkit {

namespace {

absl::Status Validate(const grpc_core::ChannelArgs& args, absl::string_view json) {
  // Registration must precede the first use of gRPC's configuration, which
  // parsing below triggers; its failure (too late) is not this call's error.
  RegisterAll().IgnoreError();
  auto config = grpc_core::ServiceConfigImpl::Create(args, json);
  if (config.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(config.status().message());
}

}  // namespace

absl::Status ValidateServiceConfig(absl::string_view service_config_json) {
  return Validate(grpc_core::ChannelArgs(), service_config_json);
}

std::shared_ptr<grpc::Channel> CreateChannel(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args) {
  grpc_channel_args c_args;
  args.SetChannelArgs(&c_args);
  // As the channel does: the last service config given wins, and parsing
  // sees the channel's own args (the retry parser reads one of them).
  const grpc_core::ChannelArgs channel_args = grpc_core::ChannelArgs::FromC(&c_args);
  absl::optional<absl::string_view> json = channel_args.GetString(GRPC_ARG_SERVICE_CONFIG);
  if (json.has_value()) {
    absl::Status status = Validate(channel_args, *json);
    if (!status.ok()) {
      // A lame channel fails every call with the code and message given here.
      grpc_channel* lame = grpc_lame_client_channel_create(
          target.c_str(), GRPC_STATUS_INVALID_ARGUMENT,
          std::string(status.message()).c_str());
      return grpc::CreateChannelInternal("", lame, {});
    }
  }
  RegisterAll().IgnoreError();
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace lbkit
