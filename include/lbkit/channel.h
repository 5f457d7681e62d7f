// Channels whose service config errors are reported in full.
//
// gRPC 1.51 rejects a malformed service config given through
// grpc::ChannelArguments::SetServiceConfigJSON by failing every RPC with
// INVALID_ARGUMENT and the bare message "Failed to create secure client
// channel"; the field path only reaches the log. lbkit::CreateChannel checks
// the config first and, when it is malformed, returns a channel whose RPCs
// fail with INVALID_ARGUMENT and the whole validation message, e.g.
//   errors validating service config: [field:loadBalancingConfig
//   error:No known policies in list: lbkit_round_robbin]
//
//   grpc::ChannelArguments args;
//   args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"lbkit_round_robin":{}}]})");
//   std::shared_ptr<grpc::Channel> channel = lbkit::CreateChannel(
//       "dns:///greeter.internal:50051", grpc::InsecureChannelCredentials(), args);
//
// Both functions call lbkit::RegisterAll() first, so lbkit's policies are
// known to the parser.

#ifndef LBKIT_CHANNEL_H_
#define LBKIT_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lbkit {

// Parses a service config as a channel would: OK, or INVALID_ARGUMENT with
// every error and its JSON field path.
absl::Status ValidateServiceConfig(absl::string_view service_config_json);

// grpc::CreateCustomChannel, except that a malformed service config in
// `args` yields a channel whose RPCs all fail with INVALID_ARGUMENT and the
// full message from ValidateServiceConfig.
std::shared_ptr<grpc::Channel> CreateChannel(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args);

}  // namespace lbkit

#endif  // LBKIT_CHANNEL_H_
