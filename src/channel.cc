#include "lbkit/channel.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "grpc_internal/abi_guard.h"
#include "lbkit/lbkit.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/service_config/service_config_impl.h"

namespace lbkit {

absl::Status ValidateServiceConfig(absl::string_view service_config_json) {
  // Registration must precede the first use of gRPC's configuration, which
  // parsing below triggers; its failure (too late) is not this call's error.
  RegisterAll().IgnoreError();
  auto config = grpc_core::ServiceConfigImpl::Create(grpc_core::ChannelArgs(),
                                                     service_config_json);
  if (config.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(config.status().message());
}

std::shared_ptr<grpc::Channel> CreateChannel(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args) {
  grpc_channel_args c_args;
  args.SetChannelArgs(&c_args);
  for (size_t i = 0; i < c_args.num_args; ++i) {
    const grpc_arg& arg = c_args.args[i];
    if (arg.type != GRPC_ARG_STRING ||
        absl::string_view(arg.key) != GRPC_ARG_SERVICE_CONFIG) {
      continue;
    }
    absl::Status status = ValidateServiceConfig(arg.value.string);
    if (status.ok()) break;
    // A lame channel fails every call with the code and message given here.
    grpc_channel* lame = grpc_lame_client_channel_create(
        target.c_str(), GRPC_STATUS_INVALID_ARGUMENT,
        std::string(status.message()).c_str());
    return grpc::CreateChannelInternal("", lame, {});
  }
  RegisterAll().IgnoreError();
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace lbkit
