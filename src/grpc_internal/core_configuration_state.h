// Whether gRPC has already built its CoreConfiguration.
//
// CoreConfiguration::RegisterBuilder() aborts the process once the
// configuration exists (it is built when the first channel or server is
// created), and the class offers no public way to ask. lbkit::RegisterAll()
// must instead fail politely, so it reads the configuration pointer itself;
// docs/grpc-internals.md explains the choice.

#ifndef LBKIT_GRPC_INTERNAL_CORE_CONFIGURATION_STATE_H_
#define LBKIT_GRPC_INTERNAL_CORE_CONFIGURATION_STATE_H_

namespace lbkit::grpc_internal {

// True when grpc_core::CoreConfiguration::Get() has already built the
// configuration, i.e. registering a builder now would abort.
bool CoreConfigurationBuilt();

}  // namespace lbkit::grpc_internal

#endif  // LBKIT_GRPC_INTERNAL_CORE_CONFIGURATION_STATE_H_
