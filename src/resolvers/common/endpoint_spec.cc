#include "resolvers/common/endpoint_spec.h"

#include <arpa/inet.h>
#include <map>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace lbkit::resolvers {

namespace {

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

}  // namespace

bool IsIpLiteral(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

absl::Status SplitHostPort(absl::string_view host_port, std::string* host,
                           uint16_t* port) {
  absl::string_view h, p;
  if (absl::StartsWith(host_port, "[")) {
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", Quoted(host_port), " has no closing ']'"));
    }
    h = host_port.substr(1, close - 1);
    absl::string_view rest = host_port.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", Quoted(host_port), " has no port"));
    }
    p = rest;
  } else {
    const size_t colon = host_port.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", Quoted(host_port), " has no port"));
    }
    h = host_port.substr(0, colon);
    p = host_port.substr(colon + 1);
    if (h.find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address ", Quoted(host_port), ": write IPv6 addresses as [addr]:port"));
    }
  }
  if (h.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", Quoted(host_port), " has no host"));
  }
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(p, &port_number) || port_number < 1 || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", Quoted(host_port), ": port ", Quoted(p),
        " is not a number in [1, 65535]"));
  }
  *host = std::string(h);
  *port = static_cast<uint16_t>(port_number);
  return absl::OkStatus();
}

absl::StatusOr<internal::Locality> ParseLocality(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (text.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "locality ", Quoted(text), " is not region[/zone[/subZone]]"));
  }
  internal::Locality locality;
  locality.region = parts[0];
  if (parts.size() > 1) locality.zone = parts[1];
  if (parts.size() > 2) locality.sub_zone = parts[2];
  return locality;
}

absl::StatusOr<EndpointSpec> ParseEndpoint(absl::string_view text) {
  std::vector<absl::string_view> fields = absl::StrSplit(text, ';');
  EndpointSpec spec;
  spec.address = std::string(absl::StripAsciiWhitespace(fields[0]));
  std::string host;
  uint16_t port;
  if (absl::Status s = SplitHostPort(spec.address, &host, &port); !s.ok()) return s;
  std::set<std::string> seen;
  for (size_t i = 1; i < fields.size(); ++i) {
    const absl::string_view field = fields[i];
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attribute ", Quoted(field), " is not key=value (keys: locality, "
          "weight, label.NAME)"));
    }
    const std::string key(field.substr(0, eq));
    const absl::string_view value = field.substr(eq + 1);
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("attribute ", Quoted(key), " is given twice"));
    }
    if (key == "weight") {
      uint32_t weight = 0;
      if (!absl::SimpleAtoi(value, &weight) || weight < 1 ||
          weight > internal::EndpointAttributes::kMaxWeight) {
        return absl::InvalidArgumentError(absl::StrCat(
            "weight must be an integer in [1, ", internal::EndpointAttributes::kMaxWeight,
            "], got ", Quoted(value)));
      }
      spec.attributes.weight = weight;
    } else if (key == "locality") {
      auto locality = ParseLocality(value);
      if (!locality.ok()) return locality.status();
      spec.attributes.locality = *std::move(locality);
    } else if (absl::StartsWith(key, "label.") && key.size() > 6) {
      spec.attributes.labels[key.substr(6)] = std::string(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown attribute ", Quoted(key), " (keys: locality, weight, label.NAME)"));
    }
  }
  return spec;
}

absl::StatusOr<std::vector<EndpointSpec>> ParseEndpointList(
    absl::string_view list) {
  std::vector<EndpointSpec> specs;
  std::map<std::string, size_t> first_seen;
  if (absl::StripAsciiWhitespace(list).empty()) return specs;
  size_t index = 0;
  for (absl::string_view text : absl::StrSplit(list, ',')) {
    ++index;
    auto spec = ParseEndpoint(text);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint ", index, " (", Quoted(text), "): ", spec.status().message()));
    }
    auto [it, inserted] = first_seen.emplace(spec->address, index);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint ", index, " (", Quoted(text), "): address ", spec->address,
          " is already endpoint ", it->second));
    }
    specs.push_back(*std::move(spec));
  }
  return specs;
}

bool HasHostNames(const std::vector<EndpointSpec>& specs) {
  for (const EndpointSpec& spec : specs) {
    std::string host;
    uint16_t port;
    if (SplitHostPort(spec.address, &host, &port).ok() && !IsIpLiteral(host)) return true;
  }
  return false;
}

}  // namespace lbkit::resolvers
