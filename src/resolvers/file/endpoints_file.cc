#include "resolvers/file/endpoints_file.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"

namespace lbkit::resolvers {

namespace {

using grpc_core::JsonArgs;
using grpc_core::JsonLoaderInterface;
using grpc_core::JsonObjectLoader;
using grpc_core::ValidationErrors;

struct LocalityJson {
  std::string region;
  std::string zone;
  std::string sub_zone;

  static const JsonLoaderInterface* JsonLoader(const JsonArgs&) {
    static const auto* loader = JsonObjectLoader<LocalityJson>()
                                    .OptionalField("region", &LocalityJson::region)
                                    .OptionalField("zone", &LocalityJson::zone)
                                    .OptionalField("subZone", &LocalityJson::sub_zone)
                                    .Finish();
    return loader;
  }
};

struct EndpointJson {
  std::string address;
  LocalityJson locality;
  int64_t weight = 1;  // wide, so that -1 or 2^31 parse and fail the range check
  std::map<std::string, std::string> labels;

  static const JsonLoaderInterface* JsonLoader(const JsonArgs&) {
    static const auto* loader = JsonObjectLoader<EndpointJson>()
                                    .Field("address", &EndpointJson::address)
                                    .OptionalField("locality", &EndpointJson::locality)
                                    .OptionalField("weight", &EndpointJson::weight)
                                    .OptionalField("labels", &EndpointJson::labels)
                                    .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const JsonArgs&, ValidationErrors* errors) {
    {
      ValidationErrors::ScopedField field(errors, ".address");
      std::string host;
      uint16_t port;
      if (!errors->FieldHasErrors()) {
        absl::Status s = SplitHostPort(address, &host, &port);
        if (!s.ok()) errors->AddError(s.message());
      }
    }
    {
      ValidationErrors::ScopedField field(errors, ".weight");
      if (!errors->FieldHasErrors() &&
          (weight < 1 || weight > internal::EndpointAttributes::kMaxWeight)) {
        errors->AddError(absl::StrCat("must be an integer in [1, ",
                                      internal::EndpointAttributes::kMaxWeight, "], got ", weight));
      }
    }
  }
};

struct FileJson {
  std::vector<EndpointJson> endpoints;
  absl::optional<grpc_core::Json::Object> service_config;

  static const JsonLoaderInterface* JsonLoader(const JsonArgs&) {
    static const auto* loader = JsonObjectLoader<FileJson>()
                                    .Field("endpoints", &FileJson::endpoints)
                                    .OptionalField("serviceConfig", &FileJson::service_config)
                                    .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const JsonArgs&, ValidationErrors* errors) {
    std::map<std::string, size_t> first;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      if (endpoints[i].address.empty()) continue;
      auto [it, inserted] = first.emplace(endpoints[i].address, i);
      if (!inserted) {
        ValidationErrors::ScopedField field(errors,
                                            absl::StrCat(".endpoints[", i, "].address"));
        errors->AddError(absl::StrCat("duplicate address ", endpoints[i].address,
                                      " (also endpoints[", it->second, "])"));
      }
    }
  }
};

// "JSON parse error at index 17" -> "... (line 2, column 5)".
std::string WithLineAndColumn(absl::string_view message, absl::string_view text) {
  const size_t at = message.rfind("at index ");
  size_t index = 0;
  if (at == absl::string_view::npos) return std::string(message);
  absl::string_view digits = message.substr(at + 9);
  size_t end = 0;
  while (end < digits.size() && absl::ascii_isdigit(digits[end])) ++end;
  if (!absl::SimpleAtoi(digits.substr(0, end), &index)) return std::string(message);
  size_t line = 1, column = 1;
  for (size_t i = 0; i < index && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return absl::StrCat(message, " (line ", line, ", column ", column, ")");
}

EndpointSpec ToSpec(EndpointJson e) {
  EndpointSpec spec;
  spec.address = std::move(e.address);
  spec.attributes.locality = {std::move(e.locality.region), std::move(e.locality.zone),
                              std::move(e.locality.sub_zone)};
  spec.attributes.weight = static_cast<uint32_t>(e.weight);
  spec.attributes.labels = std::move(e.labels);
  return spec;
}

}  // namespace

absl::StatusOr<EndpointsFile> ParseEndpointsFile(absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("the file is empty");
  }
  auto json = grpc_core::Json::Parse(text);
  if (!json.ok()) {
    return absl::InvalidArgumentError(WithLineAndColumn(json.status().message(), text));
  }
  auto parsed = grpc_core::LoadFromJson<FileJson>(*json, JsonArgs(), "invalid endpoints file");
  if (!parsed.ok()) return parsed.status();
  EndpointsFile file;
  for (EndpointJson& e : parsed->endpoints) file.endpoints.push_back(ToSpec(std::move(e)));
  if (parsed->service_config.has_value()) {
    file.service_config_json = grpc_core::Json(*parsed->service_config).Dump();
  }
  return file;
}

absl::StatusOr<EndpointSpec> ParseEndpointObject(absl::string_view text) {
  auto json = grpc_core::Json::Parse(text);
  if (!json.ok()) {
    return absl::InvalidArgumentError(WithLineAndColumn(json.status().message(), text));
  }
  auto parsed = grpc_core::LoadFromJson<EndpointJson>(*json, JsonArgs(), "invalid endpoint");
  if (!parsed.ok()) return parsed.status();
  return ToSpec(*std::move(parsed));
}

}  // namespace lbkit::resolvers
