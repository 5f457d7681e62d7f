// A manual resolver for end-to-end tests: gRPC's own fake resolver
// ("fake:///" targets), whose address list the test sets while the channel
// runs. Exported by libgrpc 1.51 (docs/grpc-internals.md).

#ifndef LBKIT_TESTS_SUPPORT_FAKE_RESOLVER_H_
#define LBKIT_TESTS_SUPPORT_FAKE_RESOLVER_H_

#include <grpcpp/support/channel_arguments.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/ext/filters/client_channel/resolver/fake/fake_resolver.h"
#include "src/core/lib/address_utils/parse_address.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/uri/uri_parser.h"

namespace lbkit::testing {

class FakeResolver {
 public:
  FakeResolver()
      : generator_(grpc_core::MakeRefCounted<
                   grpc_core::FakeResolverResponseGenerator>()) {}

  grpc::ChannelArguments ChannelArgs() const {
    grpc::ChannelArguments args;
    args.SetPointerWithVtable(
        GRPC_ARG_FAKE_RESOLVER_RESPONSE_GENERATOR, generator_.get(),
        &grpc_core::FakeResolverResponseGenerator::kChannelArgPointerVtable);
    return args;
  }

  void SetAddresses(const std::vector<std::string>& host_ports) {
    grpc_core::ExecCtx exec_ctx;
    grpc_core::Resolver::Result result;
    grpc_core::ServerAddressList addresses;
    for (const auto& hp : host_ports) {
      auto uri = grpc_core::URI::Parse(absl::StrCat("ipv4:", hp));
      GPR_ASSERT(uri.ok());
      grpc_resolved_address address;
      GPR_ASSERT(grpc_parse_uri(*uri, &address));
      addresses.emplace_back(address, grpc_core::ChannelArgs());
    }
    result.addresses = std::move(addresses);
    generator_->SetResponse(std::move(result));
  }

 private:
  grpc_core::RefCountedPtr<grpc_core::FakeResolverResponseGenerator> generator_;
};

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_FAKE_RESOLVER_H_
