// gRPC status code names for the greeter example: the upper-case spelling of
// grpc::StatusCode (e.g. "UNAVAILABLE") that the server's flags, the control
// RPC and the client's JSON report all use.

#ifndef LBKIT_EXAMPLES_GREETER_STATUS_CODES_H_
#define LBKIT_EXAMPLES_GREETER_STATUS_CODES_H_

#include <grpcpp/support/status.h>

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace lbkit_examples {

inline constexpr std::array<std::pair<grpc::StatusCode, absl::string_view>, 17>
    kStatusCodeNames = {{
        {grpc::StatusCode::OK, "OK"},
        {grpc::StatusCode::CANCELLED, "CANCELLED"},
        {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
        {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
        {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
        {grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
        {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
        {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
        {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
        {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
        {grpc::StatusCode::ABORTED, "ABORTED"},
        {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
        {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
        {grpc::StatusCode::INTERNAL, "INTERNAL"},
        {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
        {grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
        {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
    }};

// The code's name; a code outside the table (a peer may send any integer)
// becomes "CODE_<n>" so that it still shows up, distinctly, in reports.
inline std::string StatusCodeName(grpc::StatusCode code) {
  for (const auto& [c, name] : kStatusCodeNames) {
    if (c == code) return std::string(name);
  }
  return "CODE_" + std::to_string(static_cast<int>(code));
}

// Exact, case-sensitive match on the names above.
inline std::optional<grpc::StatusCode> StatusCodeFromName(absl::string_view name) {
  for (const auto& [code, n] : kStatusCodeNames) {
    if (n == name) return code;
  }
  return std::nullopt;
}

// "OK, CANCELLED, ..." for error messages.
inline std::string AllStatusCodeNames() {
  std::string out;
  for (const auto& [code, name] : kStatusCodeNames) {
    if (!out.empty()) out += ", ";
    out.append(name.data(), name.size());
  }
  return out;
}

}  // namespace lbkit_examples

#endif  // LBKIT_EXAMPLES_GREETER_STATUS_CODES_H_
