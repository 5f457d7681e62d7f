#include "common/endpoint_attributes.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lbkit::internal {

std::string Locality::ToString() const {
  return absl::StrCat(region, "/", zone, "/", sub_zone);
}

std::string EndpointAttributes::ToString() const {
  std::vector<std::string> parts = {absl::StrCat("weight=", weight)};
  if (!locality.empty()) parts.push_back("locality=" + locality.ToString());
  for (const auto& [k, v] : labels) parts.push_back(absl::StrCat("label.", k, "=", v));
  return absl::StrJoin(parts, ";");
}

}  // namespace lbkit::internal
