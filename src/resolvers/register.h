// Registration hooks of every lbkit resolver, called from
// lbkit::RegisterAll(). Adding a resolver means declaring its function here
// and adding it to kResolvers.

#ifndef LBKIT_RESOLVERS_REGISTER_H_
#define LBKIT_RESOLVERS_REGISTER_H_

#include "absl/strings/string_view.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/etcd/etcd_resolver.h"
#include "resolvers/file/file_resolver.h"
#include "resolvers/k8s/k8s_target.h"
#include "resolvers/static/static_resolver.h"
#include "src/core/lib/config/core_configuration.h"

namespace lbkit::resolvers {

void RegisterStaticResolver(grpc_core::CoreConfiguration::Builder* builder);
void RegisterFileResolver(grpc_core::CoreConfiguration::Builder* builder);
void RegisterEtcdResolver(grpc_core::CoreConfiguration::Builder* builder);
void RegisterK8sResolver(grpc_core::CoreConfiguration::Builder* builder);

struct ResolverEntry {
  absl::string_view scheme;
  void (*register_resolver)(grpc_core::CoreConfiguration::Builder*);
};

inline constexpr ResolverEntry kResolvers[] = {
    {kStaticScheme, RegisterStaticResolver},
    {kFileScheme, RegisterFileResolver},
    {kEtcdScheme, RegisterEtcdResolver},
    {k8s::kK8sScheme, RegisterK8sResolver},
};

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_REGISTER_H_
