// The policy behind lbkit_weighted_subsets and lbkit_routes: endpoints are
// grouped into subsets by their labels (Istio's DestinationRule subsets),
// each subset balanced by its own child policy, and each call goes to the
// first route that matches it (method path and request headers, as a
// VirtualService's http routes match), which may fail it (fault abort) or
// sends it to one of its subsets in proportion to the weights. A subset has
// one child, and so one connection per endpoint, however many routes use it.
//
// lbkit_weighted_subsets is the router with a single route that matches
// every call. docs/routing.md describes the matching rules.

#ifndef LBKIT_POLICIES_COMMON_SUBSET_ROUTER_H_
#define LBKIT_POLICIES_COMMON_SUBSET_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/parent_policy.h"
#include "src/core/lib/gprpp/orphanable.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "stats/stats.h"

namespace re2 {
class RE2;
}

namespace lbkit::policies {

// Istio's StringMatch: exactly one of exact, prefix, regex (RE2, the whole
// value must match, as Envoy's safe_regex does), or present (true: any
// value, Istio's `{}`).
struct StringMatch {
  enum class Kind { kExact, kPrefix, kRegex, kPresent };
  Kind kind = Kind::kExact;
  std::string value;
  bool ignore_case = false;  // exact and prefix only, as Istio's ignoreUriCase
  std::shared_ptr<const re2::RE2> regex;

  bool Matches(absl::string_view text) const;
};

// Parses {"exact": ...} / {"prefix": ...} / {"regex": ...} /
// {"present": true} at the current field; errors name the field.
std::optional<StringMatch> ParseStringMatch(const grpc_core::Json& json,
                                            grpc_core::ValidationErrors* errors);

struct HeaderMatch {
  std::string name;  // lower case, as gRPC keys metadata
  StringMatch match;
  bool absent_or_different = false;  // withoutHeaders
};

// One entry of a route's match list: every condition must hold.
struct RouteMatch {
  std::optional<StringMatch> method;  // the call's path, "/pkg.Service/Method"
  std::vector<HeaderMatch> headers;

  bool Matches(grpc_core::LoadBalancingPolicy::PickArgs args) const;
};

struct RouteSpec {
  std::string name;
  std::vector<RouteMatch> matches;  // any one; empty = every call
  // Fault injection: this percentage of the route's calls fail with
  // `abort_status` at pick time.
  double abort_percent = 0;
  absl::Status abort_status;
  std::vector<std::pair<size_t, uint32_t>> split;  // (index in subsets, weight)
};

struct SubsetSpec {
  std::string name;
  std::map<std::string, std::string> labels;  // empty: every endpoint
  grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config> child_policy;
};

struct RouterSpec {
  std::vector<SubsetSpec> subsets;
  std::vector<RouteSpec> routes;
  // A subset with a share but no READY endpoint fails its share (true), or
  // its share goes to the route's other subsets (false).
  bool fail_empty_subsets = false;
};

// The policy. A registered policy derives from it to name itself and say
// where its parsed config keeps the RouterSpec.
class SubsetRouter : public ParentPolicy {
 public:
  using SpecOf = const RouterSpec& (*)(const Config&);
  SubsetRouter(Args args, absl::string_view name, SpecOf spec_of);

 private:
  absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) override;
  PickerUpdate MakePickerLocked() override;
  std::vector<const ChildPolicy*> SubsetChildrenLocked();

  const SpecOf spec_of_;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_SUBSET_ROUTER_H_
