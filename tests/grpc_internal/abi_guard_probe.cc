// Compiled (syntax only) by tests/grpc_internal/check_abi_guard.cmake: once
// as it is, where the ABI guard must pass, and once pretending an Abseil
// release lbkit does not know, where it must fail and name what it found.
#include "src/grpc_internal/abi_guard.h"

int main() { return 0; }
