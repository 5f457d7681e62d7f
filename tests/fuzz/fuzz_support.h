// What every lbkit fuzzer shares: a failed property aborts with the input
// (libFuzzer then saves it as crash-*), and lbkit's registration happens in
// LLVMFuzzerInitialize, so its one-time allocations are not blamed on the
// first input by the leak check.

#ifndef LBKIT_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define LBKIT_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "lbkit/channel.h"
#include "lbkit/lbkit.h"

namespace lbkit::fuzz {

// Each fuzzer defines its name, for the failure message.
extern const char kFuzzerName[];

[[noreturn]] inline void Fail(const char* what, const std::string& input,
                              const std::string& detail = "") {
  fprintf(stderr, "%s: %s\ninput: %s\ndetail: %s\n", kFuzzerName, what, input.c_str(),
          detail.c_str());
  abort();
}

// Registers lbkit's policies and builds gRPC's configuration once.
inline void InitLbkit() {
  if (!lbkit::RegisterAll().ok()) abort();
  lbkit::ValidateServiceConfig("{}").IgnoreError();
}

}  // namespace lbkit::fuzz

#endif  // LBKIT_TESTS_FUZZ_FUZZ_SUPPORT_H_
