// lbkit::TranslateIstio(): Istio DestinationRule / VirtualService YAML to the
// service config of lbkit's policies. The policy chain for one traffic
// policy is, from the outside in: lbkit_circuit_breaker (connectionPool),
// lbkit_outlier_ejection (outlierDetection), lbkit_locality
// (localityLbSetting), then the balancing policy (loadBalancer). A
// VirtualService splitting traffic across subsets puts
// lbkit_weighted_subsets on top, with one such chain per subset.

#include "lbkit/istio.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "grpc_internal/abi_guard.h"
#include "lbkit/channel.h"
#include "src/core/lib/json/json.h"

namespace lbkit {

namespace {

using grpc_core::Json;

// A failure with the place it happened; becomes INVALID_ARGUMENT.
struct Error {
  std::string message;
};

std::string Scalar(const YAML::Node& node, const std::string& path) {
  if (!node.IsDefined()) throw Error{absl::StrCat(path, ": missing")};
  if (!node.IsScalar()) throw Error{absl::StrCat(path, ": must be a single value")};
  return node.Scalar();
}

int64_t Integer(const YAML::Node& node, const std::string& path) {
  int64_t v;
  if (!absl::SimpleAtoi(Scalar(node, path), &v)) {
    throw Error{absl::StrCat(path, ": \"", node.Scalar(), "\" is not an integer")};
  }
  return v;
}

bool Bool(const YAML::Node& node, const std::string& path) {
  const std::string s = absl::AsciiStrToLower(Scalar(node, path));
  if (s == "true") return true;
  if (s == "false") return false;
  throw Error{absl::StrCat(path, ": \"", node.Scalar(), "\" is not true or false")};
}

// "1h2m3.5s", "100ms", "2s" (Go durations, as Istio writes them) to gRPC's
// JSON form "3723.5s".
std::string Duration(const YAML::Node& node, const std::string& path) {
  std::string text = Scalar(node, path);
  absl::string_view rest = text;
  double seconds = 0;
  if (rest.empty()) throw Error{absl::StrCat(path, ": empty duration")};
  while (!rest.empty()) {
    size_t n = 0;
    while (n < rest.size() && (absl::ascii_isdigit(rest[n]) || rest[n] == '.')) ++n;
    double value;
    if (n == 0 || !absl::SimpleAtod(rest.substr(0, n), &value)) {
      throw Error{absl::StrCat(path, ": \"", text, "\" is not a duration (e.g. 10s, 1.5s, 100ms)")};
    }
    rest.remove_prefix(n);
    static const std::pair<const char*, double> kUnits[] = {
        {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}, {"h", 3600}, {"m", 60}, {"s", 1}};
    bool matched = false;
    for (const auto& [unit, scale] : kUnits) {
      if (absl::ConsumePrefix(&rest, unit)) {
        seconds += value * scale;
        matched = true;
        break;
      }
    }
    if (!matched) {
      throw Error{absl::StrCat(path, ": \"", text, "\" is not a duration (e.g. 10s, 1.5s, 100ms)")};
    }
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9f", seconds);
  std::string out = buffer;
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out + "s";
}

Json::Object Policy(const std::string& name, Json::Object config) {
  return Json::Object{{name, Json(std::move(config))}};
}

class Translator {
 public:
  explicit Translator(std::vector<std::string>* warnings) : warnings_(warnings) {}

  // The policy chain (a loadBalancingConfig list) for `tp`, or for `tp`'s
  // sections overridden by `over` (a subset's trafficPolicy).
  Json::Array Chain(const YAML::Node& tp, const YAML::Node& over, const std::string& path,
                    const std::string& over_path) {
    // A section a policy does not set is undefined, never a null node:
    // `if (node)` is how every caller tells "absent" (YAML::Node() is a
    // defined null, which once turned a rule without trafficPolicy into
    // outlier ejection nobody asked for).
    auto pick = [&](const char* key, std::string* where) -> YAML::Node {
      if (over && over.IsMap() && over[key]) {
        *where = absl::StrCat(over_path, ".", key);
        return over[key];
      }
      *where = absl::StrCat(path, ".", key);
      if (tp && tp.IsMap() && tp[key]) return tp[key];
      return YAML::Node(YAML::NodeType::Undefined);
    };
    for (const YAML::Node* node : {&tp, &over}) {
      if (!*node || !node->IsMap()) continue;
      const std::string& p = node == &tp ? path : over_path;
      for (const auto& entry : *node) {
        const std::string key = entry.first.Scalar();
        if (key == "loadBalancer" || key == "outlierDetection" || key == "connectionPool") continue;
        if (key == "tls") {
          Warn(p + ".tls", "not carried over: transport security is the channel's credentials "
                           "(grpc::SslCredentials), not the balancing policy's");
        } else if (key == "portLevelSettings") {
          Warn(p + ".portLevelSettings", "not carried over: a channel talks to one port; write "
                                         "the port's settings at the top level");
        } else {
          Warn(p + "." + key, "not carried over: lbkit has no equivalent");
        }
      }
    }
    std::string lb_path, od_path, cp_path;
    const YAML::Node lb = pick("loadBalancer", &lb_path);
    const YAML::Node od = pick("outlierDetection", &od_path);
    const YAML::Node cp = pick("connectionPool", &cp_path);

    Json::Object policy = Leaf(lb, lb_path);
    policy = Locality(lb, lb_path, od, od_path, std::move(policy));
    if (od) policy = Outlier(od, od_path, policy);
    if (cp) policy = Breaker(cp, cp_path, policy);
    return Json::Array{Json(std::move(policy))};
  }

  // Once each: a trafficPolicy shared by several subsets is translated
  // once per subset.
  void Warn(const std::string& path, const std::string& why) {
    std::string w = absl::StrCat(path, ": ", why);
    if (std::find(warnings_->begin(), warnings_->end(), w) == warnings_->end()) {
      warnings_->push_back(std::move(w));
    }
  }

 private:
  Json::Object Leaf(const YAML::Node& lb, const std::string& path) {
    if (!lb) return Policy("lbkit_least_request", {});  // Istio's default since 1.14
    for (const auto& entry : lb) {
      const std::string key = entry.first.Scalar();
      if (key == "warmupDurationSecs" || key == "warmup") {
        Warn(path + "." + key, "not carried over: lbkit has no slow start");
      } else if (key != "simple" && key != "consistentHash" && key != "localityLbSetting") {
        Warn(path + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
    if (lb["consistentHash"]) return Hash(lb["consistentHash"], path + ".consistentHash");
    if (!lb["simple"]) return Policy("lbkit_least_request", {});
    const std::string simple = Scalar(lb["simple"], path + ".simple");
    if (simple == "ROUND_ROBIN") return Policy("lbkit_round_robin", {});
    if (simple == "LEAST_REQUEST" || simple == "LEAST_CONN" || simple == "UNSPECIFIED") {
      return Policy("lbkit_least_request", {});
    }
    if (simple == "RANDOM") {
      Warn(path + ".simple", "RANDOM becomes lbkit_round_robin: the same long-run shares, "
                             "without the random picks' variance");
      return Policy("lbkit_round_robin", {});
    }
    if (simple == "PASSTHROUGH") {
      Warn(path + ".simple", "PASSTHROUGH becomes gRPC's pick_first: the channel connects to "
                             "the first address the resolver returns");
      return Policy("pick_first", {});
    }
    throw Error{absl::StrCat(path, ".simple: \"", simple,
                             "\" is not ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN, RANDOM or "
                             "PASSTHROUGH")};
  }

  Json::Object Hash(const YAML::Node& ch, const std::string& path) {
    Json::Object config;
    if (ch["httpHeaderName"]) {
      config["requestHashHeader"] = absl::AsciiStrToLower(Scalar(ch["httpHeaderName"], path));
    }
    if (ch["useSourceIp"] && Bool(ch["useSourceIp"], path + ".useSourceIp")) {
      // Istio hashes the client's IP, so all of one client's calls stick
      // to one backend: lbkit hashes a key fixed for the process.
      config["useSourceIp"] = Json(true);
    }
    if (ch["httpCookie"]) {
      Warn(path + ".httpCookie", "not carried over: gRPC calls carry no cookies; every call "
                                 "hashes a random value (hash a header with httpHeaderName)");
    }
    if (ch["httpQueryParameterName"]) {
      Warn(path + ".httpQueryParameterName",
           "not carried over: gRPC calls have no query parameters; every call hashes a random "
           "value (hash a header with httpHeaderName)");
    }
    if (ch["maglev"]) {
      if (ch["maglev"]["tableSize"]) {
        config["tableSize"] = Json(Integer(ch["maglev"]["tableSize"], path + ".maglev.tableSize"));
      }
      return Policy("lbkit_maglev", std::move(config));
    }
    YAML::Node min = ch["ringHash"] ? ch["ringHash"]["minimumRingSize"] : ch["minimumRingSize"];
    if (min) {
      const int64_t size = Integer(min, path + ".minimumRingSize");
      config["minRingSize"] = Json(size);
      // lbkit's default maximum (4096) would reject a larger minimum.
      if (size > 4096) config["maxRingSize"] = Json(size);
    }
    return Policy("lbkit_ring_hash", std::move(config));
  }

  // Istio's locality load balancing (docs/istio.md, "Locality load
  // balancing"): on by default in the mesh; `distribute` applies on its
  // own, failover (by region or by failoverPriority) only together with
  // outlier detection, since without ejection no endpoint ever looks down.
  Json::Object Locality(const YAML::Node& lb, const std::string& lb_path, const YAML::Node& od,
                        const std::string& od_path, Json::Object child) {
    const YAML::Node ls = lb && lb.IsMap() && lb["localityLbSetting"]
                              ? lb["localityLbSetting"]
                              : YAML::Node(YAML::NodeType::Undefined);
    const std::string path = lb_path + ".localityLbSetting";
    if (ls && ls["enabled"] && !Bool(ls["enabled"], path + ".enabled")) return child;
    Json::Object config;
    if (ls && ls["distribute"]) {
      Json::Array rules;
      size_t i = 0;
      for (const auto& rule : ls["distribute"]) {
        const std::string p = absl::StrCat(path, ".distribute[", i++, "]");
        Json::Object to;
        if (!rule["to"] || !rule["to"].IsMap()) throw Error{p + ".to: missing"};
        for (const auto& entry : rule["to"]) {
          to[entry.first.Scalar()] = Json(Integer(entry.second, p + ".to." + entry.first.Scalar()));
        }
        rules.push_back(Json(Json::Object{{"from", Scalar(rule["from"], p + ".from")},
                                          {"to", Json(std::move(to))}}));
      }
      config["distribute"] = Json(std::move(rules));
      for (const char* key : {"failover", "failoverPriority"}) {
        if (ls[key]) {
          Warn(absl::StrCat(path, ".", key),
               "not applied: with distribute set, Istio applies distribute only");
        }
      }
    } else if (!od) {
      for (const char* key : {"failover", "failoverPriority"}) {
        if (ls && ls[key]) {
          Warn(absl::StrCat(path, ".", key),
               "not applied: locality failover takes effect only with outlierDetection (as "
               "in Istio, where no endpoint would ever be seen failing without it)");
        }
      }
      return child;
    } else {
      if (ls && ls["failover"]) {
        Json::Array rules;
        size_t i = 0;
        for (const auto& rule : ls["failover"]) {
          const std::string p = absl::StrCat(path, ".failover[", i++, "]");
          rules.push_back(Json(Json::Object{{"from", Scalar(rule["from"], p + ".from")},
                                            {"to", Scalar(rule["to"], p + ".to")}}));
        }
        config["failover"] = Json(std::move(rules));
      }
      if (ls && ls["failoverPriority"]) {
        Json::Array keys;
        size_t i = 0;
        for (const auto& key : ls["failoverPriority"]) {
          keys.push_back(Json(Scalar(key, absl::StrCat(path, ".failoverPriority[", i++, "]"))));
        }
        config["failoverPriority"] = Json(std::move(keys));
      }
      if (!ls) {
        Warn(od_path, "Istio's mesh default (localityLbSetting.enabled: true) turns on "
                      "locality failover with outlier detection: lbkit_locality added");
      }
    }
    config["childPolicy"] = Json(Json::Array{Json(std::move(child))});
    Warn(ls ? path : od_path,
         "the client's own locality comes from the LBKIT_LOCALITY environment "
         "variable (or a \"locality\" field added to lbkit_locality), not from the "
         "proxy's node metadata");
    return Policy("lbkit_locality", std::move(config));
  }

  Json::Object Outlier(const YAML::Node& od, const std::string& path, Json::Object child) {
    Json::Object config;
    static const std::pair<const char*, const char*> kCounts[] = {
        {"consecutive5xxErrors", "consecutive5xxErrors"},
        {"consecutiveGatewayErrors", "consecutiveGatewayErrors"},
        {"consecutiveLocalOriginFailures", "consecutiveLocalOriginFailures"},
        {"maxEjectionPercent", "maxEjectionPercent"},
        {"minHealthPercent", "minHealthPercent"}};
    static const char* kDurations[] = {"interval", "baseEjectionTime"};
    for (const auto& entry : od) {
      const std::string key = entry.first.Scalar();
      const std::string p = path + "." + key;
      bool known = false;
      for (const auto& [from, to] : kCounts) {
        if (key == from) {
          config[to] = Json(Integer(entry.second, p));
          known = true;
        }
      }
      for (const char* d : kDurations) {
        if (key == d) {
          config[key] = Json(Duration(entry.second, p));
          known = true;
        }
      }
      if (key == "splitExternalLocalOriginErrors") {
        config[key] = Json(Bool(entry.second, p));
        known = true;
      } else if (key == "consecutiveErrors") {
        // Istio once mapped it to gateway errors; current Istio ignores it.
        Integer(entry.second, p);
        Warn(p, "ignored, as current Istio ignores this deprecated field: "
                "consecutive5xxErrors keeps its default (5); set consecutive5xxErrors or "
                "consecutiveGatewayErrors instead");
        known = true;
      }
      if (!known) Warn(p, "not carried over: lbkit_outlier_ejection has no such field");
    }
    config["childPolicy"] = Json(Json::Array{Json(std::move(child))});
    return Policy("lbkit_outlier_ejection", std::move(config));
  }

  Json::Object Breaker(const YAML::Node& cp, const std::string& path, Json::Object child) {
    // Why each connection-pool field has no lbkit equivalent.
    static const std::map<std::string, const char*> kReasons = {
        {"tcp.connectTimeout",
         "not carried over: a connect timeout is the channel's, not the balancing policy's; set "
         "the channel argument grpc.min_reconnect_backoff_ms (gRPC's minimum connect timeout, "
         "20 s by default)"},
        {"tcp.tcpKeepalive",
         "not carried over: set the channel arguments grpc.keepalive_time_ms and "
         "grpc.keepalive_timeout_ms instead"},
        {"tcp.maxConnections", "not carried over: gRPC keeps one connection per endpoint"},
        {"tcp.maxConnectionDuration",
         "not carried over: gRPC clients do not age connections out (a server can, with "
         "grpc.max_connection_age_ms)"},
        {"tcp.idleTimeout", "not carried over: set the channel argument grpc.client_idle_timeout_ms"},
        {"http.http1MaxPendingRequests",
         "not carried over: gRPC queues calls inside the channel without a limit"},
        {"http.maxRequestsPerConnection",
         "not carried over: a gRPC client has no per-connection request limit"},
        {"http.maxRetries",
         "not carried over: gRPC bounds retries with retryThrottling in the service config, a "
         "token bucket rather than a count of retries in flight"},
        {"http.h2UpgradePolicy", "not carried over: gRPC always speaks HTTP/2"},
        {"http.useClientProtocol", "not carried over: gRPC always speaks HTTP/2"},
        {"http.maxConcurrentStreams",
         "not carried over: the server sets it (SETTINGS_MAX_CONCURRENT_STREAMS)"}};
    std::optional<int64_t> max_requests;
    for (const auto& section : cp) {
      const std::string s = section.first.Scalar();
      if (s != "tcp" && s != "http") {
        Warn(absl::StrCat(path, ".", s), "not carried over: lbkit has no equivalent");
        continue;
      }
      if (!section.second.IsMap()) continue;
      for (const auto& entry : section.second) {
        const std::string key = entry.first.Scalar();
        const std::string p = absl::StrCat(path, ".", s, ".", key);
        if (s == "http" && key == "http2MaxRequests") {
          const int64_t n = Integer(entry.second, p);
          if (n < 0) throw Error{p + ": must not be negative"};
          // 0 is protobuf's "unset": Istio's default, no limit.
          if (n > 0) max_requests = n;
        } else if (s == "http" && key == "idleTimeout") {
          Warn(p, absl::StrCat("not carried over: set the channel argument "
                               "grpc.client_idle_timeout_ms instead (", Duration(entry.second, p),
                               ")"));
        } else if (auto it = kReasons.find(s + "." + key); it != kReasons.end()) {
          Warn(p, it->second);
        } else {
          Warn(p, "not carried over: lbkit has no equivalent");
        }
      }
    }
    if (!max_requests.has_value()) return child;
    Json::Object config{{"maxConcurrentRequests", Json(*max_requests)},
                        {"childPolicy", Json(Json::Array{Json(std::move(child))})}};
    return Policy("lbkit_circuit_breaker", std::move(config));
  }

  std::vector<std::string>* warnings_;
};

// Istio's retry policy for a route that sets none, including the default
// route of a host without any VirtualService: 2 retries on
// connect-failure, refused-stream, unavailable, cancelled and
// retriable-status-codes (docs/istio.md, "Default retries").
constexpr int64_t kIstioDefaultRetryAttempts = 2;
constexpr char kIstioDefaultRetryOn[] =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

// gRPC's retryPolicy for Istio's `retries` (absent: Istio's default).
std::optional<Json::Object> RetryPolicy(const YAML::Node& retries, const std::string& rp,
                                        Translator* t) {
  const bool given = retries && retries.IsMap();
  const int64_t attempts = given && retries["attempts"] ? Integer(retries["attempts"], rp + ".attempts")
                                                        : kIstioDefaultRetryAttempts;
  const std::string retry_on = given && retries["retryOn"] ? Scalar(retries["retryOn"], rp + ".retryOn")
                                                           : kIstioDefaultRetryOn;
  std::set<std::string> codes;
  static const std::map<std::string, std::string> kGrpc = {
      {"cancelled", "CANCELLED"}, {"deadline-exceeded", "DEADLINE_EXCEEDED"},
      {"internal", "INTERNAL"}, {"resource-exhausted", "RESOURCE_EXHAUSTED"},
      {"unavailable", "UNAVAILABLE"}};
  for (absl::string_view on : absl::StrSplit(retry_on, ',', absl::SkipWhitespace())) {
    on = absl::StripAsciiWhitespace(on);
    auto it = kGrpc.find(std::string(on));
    if (it != kGrpc.end()) {
      codes.insert(it->second);
    } else if (on == "connect-failure" || on == "refused-stream" || on == "reset" ||
               on == "5xx" || on == "gateway-error") {
      // What a gRPC client sees of these is UNAVAILABLE.
      codes.insert("UNAVAILABLE");
      if (on == "5xx" || on == "gateway-error") {
        t->Warn(rp + ".retryOn", absl::StrCat("\"", on, "\" is an HTTP condition: carried "
                                              "over as UNAVAILABLE"));
      }
    } else if (on == "retriable-status-codes") {
      // The HTTP codes Istio lists with it: 503, which a gRPC client sees
      // as UNAVAILABLE (a gRPC server itself always answers HTTP 200).
      codes.insert("UNAVAILABLE");
    } else {
      t->Warn(rp + ".retryOn", absl::StrCat("\"", on, "\" has no gRPC status equivalent"));
    }
  }
  // Envoy's retry back-off: base interval 25 ms unless Istio's `backoff`
  // sets it, maximum 10 times the base.
  std::string initial = "0.025s", max = "0.25s";
  if (given) {
    if (retries["perTryTimeout"]) {
      t->Warn(rp + ".perTryTimeout", "not carried over: gRPC 1.51's retry policy has no "
                                     "per-attempt timeout");
    }
    if (retries["retryRemoteLocalities"]) {
      t->Warn(rp + ".retryRemoteLocalities",
              "not carried over: a gRPC retry asks the balancing policy again, which picks by "
              "its own locality rules");
    }
    if (retries["backoff"]) {
      initial = Duration(retries["backoff"], rp + ".backoff");
      double seconds = 0;
      if (!absl::SimpleAtod(absl::string_view(initial).substr(0, initial.size() - 1), &seconds) ||
          seconds <= 0) {
        throw Error{rp + ".backoff: must be more than 0"};
      }
      max = Duration(YAML::Node(absl::StrCat(seconds * 10, "s")), rp + ".backoff");
    }
    for (const auto& entry : retries) {
      const std::string key = entry.first.Scalar();
      if (key != "attempts" && key != "retryOn" && key != "perTryTimeout" && key != "backoff" &&
          key != "retryRemoteLocalities") {
        t->Warn(rp + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
  }
  if (attempts <= 0 || codes.empty()) return std::nullopt;
  // gRPC counts the first attempt and allows at most 5.
  if (attempts + 1 > 5) t->Warn(rp + ".attempts", "gRPC allows at most 4 retries (maxAttempts 5)");
  Json::Array list;
  for (const auto& c : codes) list.push_back(Json(c));
  return Json::Object{{"maxAttempts", Json(std::min<int64_t>(5, attempts + 1))},
                      {"initialBackoff", Json(initial)},
                      {"maxBackoff", Json(max)},
                      {"backoffMultiplier", Json(2)},
                      {"retryableStatusCodes", Json(std::move(list))}};
}

// The method config of a VirtualService route (or of a host without one:
// `route` undefined): timeout and retries, for every method.
Json::Object MethodConfig(const YAML::Node& route, const std::string& path, Translator* t) {
  Json::Object mc;
  if (route && route["timeout"]) mc["timeout"] = Json(Duration(route["timeout"], path + ".timeout"));
  const YAML::Node retries =
      route && route["retries"] ? route["retries"] : YAML::Node(YAML::NodeType::Undefined);
  if (auto policy = RetryPolicy(retries, path + ".retries", t)) {
    mc["retryPolicy"] = Json(std::move(*policy));
  }
  if (route) {
    for (const auto& entry : route) {
      const std::string key = entry.first.Scalar();
      if (key != "timeout" && key != "retries" && key != "route" && key != "match" &&
          key != "name") {
        t->Warn(path + "." + key, "not carried over: lbkit balances calls; it does not rewrite, "
                                  "mirror or inject faults");
      }
    }
  }
  mc["name"] = Json(Json::Array{Json(Json::Object{})});  // every method
  return mc;
}

struct Document {
  std::string kind, name, ns;
  YAML::Node spec;
  std::string where;  // "document 2 (VirtualService reviews)"
};

// yaml-cpp keeps both entries of a repeated key and answers lookups with
// the first: two rules pasted together without "---" would silently lose
// one. Kubernetes rejects a repeated key; so does lbkit.
void CheckDuplicateKeys(const YAML::Node& node, int first_line, const std::string& where) {
  if (node.IsMap()) {
    std::set<std::string> keys;
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      if (!key.empty() && !keys.insert(key).second) {
        throw Error{absl::StrCat(where, ": line ", first_line + entry.first.Mark().line + 1,
                                 ": key \"", key, "\" appears twice in one mapping (two "
                                 "documents without \"---\" between them?)")};
      }
      CheckDuplicateKeys(entry.second, first_line, where);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) CheckDuplicateKeys(item, first_line, where);
  }
}

// Istio's reading of a host name in a rule: a short name ("reviews") is a
// Service in the rule's namespace; anything with a dot is taken as written.
std::string Fqdn(const std::string& host, const std::string& ns) {
  if (host.empty() || host == "*" || host.find('.') != std::string::npos ||
      host.find(':') != std::string::npos) {
    return host;
  }
  return absl::StrCat(host, ".", ns.empty() ? "default" : ns, ".svc.cluster.local");
}

// Whether a rule's host (an FQDN or "*.suffix") covers `target`; exact
// matches rank above wildcards, longer wildcards above shorter.
int HostMatch(const std::string& pattern, const std::string& target) {
  if (pattern == target) return 1 << 20;
  if (pattern == "*") return 1;
  if (absl::StartsWith(pattern, "*") && absl::EndsWith(target, pattern.substr(1))) {
    return static_cast<int>(pattern.size());
  }
  return 0;
}

// Adds the document(s) of one YAML document: a `List` (what `kubectl get
// ... -o yaml` prints) contributes its items. Kinds other than
// DestinationRule and VirtualService are skipped with a warning.
void CollectDocuments(const YAML::Node& node, const std::string& where0,
                      std::vector<Document>* docs, std::vector<std::string>* warnings) {
  if (node.IsNull()) return;
  if (!node.IsMap()) throw Error{absl::StrCat(where0, ": not a YAML mapping")};
  Document d;
  d.kind = node["kind"] ? Scalar(node["kind"], where0 + ": kind") : "";
  const YAML::Node meta = node["metadata"];
  d.name = meta && meta.IsMap() && meta["name"] && meta["name"].IsScalar() ? meta["name"].Scalar() : "";
  d.ns = meta && meta.IsMap() && meta["namespace"] && meta["namespace"].IsScalar()
             ? meta["namespace"].Scalar()
             : "";
  d.where = absl::StrCat(where0, " (", d.kind.empty() ? "no kind" : d.kind,
                         d.name.empty() ? "" : " " + d.name, ")");
  if (d.kind == "List" || (absl::EndsWith(d.kind, "List") && node["items"])) {
    if (!node["items"]) return;
    if (!node["items"].IsSequence()) throw Error{d.where + ": items must be a list"};
    size_t i = 0;
    for (const auto& item : node["items"]) {
      CollectDocuments(item, absl::StrCat(where0, " items[", i++, "]"), docs, warnings);
    }
    return;
  }
  if (d.kind != "DestinationRule" && d.kind != "VirtualService") {
    warnings->push_back(absl::StrCat(
        d.where, ": skipped: ", d.kind.empty() ? "no kind" : "a " + d.kind,
        " is not a DestinationRule or VirtualService, the two kinds lbkit translates"));
    return;
  }
  const std::string api = node["apiVersion"] ? Scalar(node["apiVersion"], d.where) : "";
  if (api != "networking.istio.io/v1beta1" && api != "networking.istio.io/v1" &&
      api != "networking.istio.io/v1alpha3") {
    throw Error{absl::StrCat(d.where, ": apiVersion \"", api,
                             "\" is not networking.istio.io/v1beta1 or v1")};
  }
  if (!node["spec"] || !node["spec"].IsMap()) {
    throw Error{absl::StrCat(d.where, ": spec is missing")};
  }
  d.spec = node["spec"];
  docs->push_back(std::move(d));
}

// YAML::LoadAll of yaml-cpp 0.7 (Debian 12's) never returns on a stream
// with a stray flow entry at block level (",", "- a\n,"): it appends empty
// documents until memory runs out (found by the fuzzer). So the stream is
// split at its document markers here and each document is loaded alone with
// YAML::Load, which stops after one. A line that is "---" or "..." (alone or
// followed by a space) is a marker wherever it stands, even inside a block
// scalar (YAML 1.2, c-forbidden), so splitting lines is exact.
std::vector<std::pair<YAML::Node, int>> LoadDocuments(absl::string_view yaml) {
  std::vector<std::pair<YAML::Node, int>> docs;
  std::string chunk;
  int chunk_line = 0, line = 0;
  bool seen_marker = false;
  auto flush = [&](bool at_marker) {
    YAML::Node node;
    try {
      node = YAML::Load(chunk);
    } catch (const YAML::Exception& e) {
      throw Error{absl::StrCat("malformed YAML at line ", chunk_line + e.mark.line + 1,
                               ", column ", e.mark.column + 1, ": ", e.msg)};
    }
    // Text before the first "---" is a document only if it holds one.
    if (!(at_marker && !seen_marker && node.IsNull())) docs.emplace_back(node, chunk_line);
    chunk.clear();
  };
  const std::vector<absl::string_view> lines = absl::StrSplit(yaml, '\n');
  for (absl::string_view text : lines) {
    // The last line has no newline of its own (errors at the end of the
    // stream keep their line number).
    const bool last = line + 1 == static_cast<int>(lines.size());
    const bool start = absl::StartsWith(text, "---");
    const bool end = absl::StartsWith(text, "...");
    if ((start || end) && (text.size() == 3 || text[3] == ' ' || text[3] == '\t' ||
                           text[3] == '\r')) {
      flush(true);
      seen_marker = true;
      chunk_line = line;
      // "--- value": the document's content may start on the marker line.
      if (start) chunk.append(text.substr(3).data(), text.size() - 3);
    } else {
      chunk.append(text.data(), text.size());
    }
    if (!last) chunk.push_back('\n');
    ++line;
  }
  flush(false);
  return docs;
}

// A VirtualService applies to sidecars (the "mesh") unless its `gateways`
// list names only gateways.
bool AppliesToMesh(const YAML::Node& spec) {
  const YAML::Node gateways = spec["gateways"];
  if (!gateways || !gateways.IsSequence() || gateways.size() == 0) return true;
  for (const auto& g : gateways) {
    if (g.IsScalar() && g.Scalar() == "mesh") return true;
  }
  return false;
}

// The DestinationRules for one host, merged as Istio merges them: the
// first one's trafficPolicy (or the first later one that has any), and the
// subsets of all, a repeated name keeping its first definition.
struct MergedRule {
  const Document* first = nullptr;
  YAML::Node traffic_policy{YAML::NodeType::Undefined};
  std::string traffic_policy_path;
  struct Subset {
    std::string name;
    YAML::Node node;
    std::string path;  // "document 1 (DestinationRule r): spec.subsets[0]"
  };
  std::vector<Subset> subsets;

  const Subset* Find(const std::string& name) const {
    for (const Subset& s : subsets) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
};

MergedRule MergeRules(const std::vector<const Document*>& rules, const std::string& target,
                      Translator* t) {
  MergedRule merged;
  for (const Document* d : rules) {
    if (merged.first == nullptr) {
      merged.first = d;
    } else {
      t->Warn(d->where, absl::StrCat("another DestinationRule for host \"", target,
                                     "\": merged into ", merged.first->where,
                                     " as Istio merges them (its new subsets are added; its "
                                     "trafficPolicy is used only if none came before)"));
    }
    const std::string path = d->where + ": spec";
    if (!merged.traffic_policy && d->spec["trafficPolicy"]) {
      merged.traffic_policy = d->spec["trafficPolicy"];
      merged.traffic_policy_path = path + ".trafficPolicy";
    } else if (merged.first != d && d->spec["trafficPolicy"]) {
      t->Warn(path + ".trafficPolicy", absl::StrCat("ignored: ", merged.first->where,
                                                    " (or an earlier rule) already sets one"));
    }
    if (const YAML::Node subsets = d->spec["subsets"]) {
      if (!subsets.IsSequence()) throw Error{path + ".subsets: must be a list"};
      size_t i = 0;
      for (const auto& s : subsets) {
        const std::string sp = absl::StrCat(path, ".subsets[", i++, "]");
        const std::string name = Scalar(s["name"], sp + ".name");
        if (merged.Find(name) != nullptr) {
          t->Warn(sp, absl::StrCat("subset \"", name, "\" is already defined: ignored"));
          continue;
        }
        merged.subsets.push_back({name, static_cast<const YAML::Node&>(s), sp});
      }
    }
    for (const auto& entry : d->spec) {
      const std::string key = entry.first.Scalar();
      if (key == "exportTo") {
        t->Warn(path + ".exportTo", "not carried over: which namespaces see a rule is the "
                                    "cluster's concern; lbkit applies it to this channel");
      } else if (key == "workloadSelector") {
        t->Warn(path + ".workloadSelector", "not carried over: lbkit applies the rule to the "
                                            "channel it configures, whatever the workload");
      } else if (key != "host" && key != "trafficPolicy" && key != "subsets") {
        t->Warn(path + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
  }
  return merged;
}

// The route a channel takes: the first http route without a match (the
// default), else the first.
YAML::Node ChooseRoute(const Document& vs, std::string* route_path, Translator* t) {
  YAML::Node route(YAML::NodeType::Undefined);
  const YAML::Node http = vs.spec["http"];
  if (!http || !http.IsSequence() || http.size() == 0) return route;
  size_t i = 0, chosen = 0;
  bool found = false;
  for (const auto& r : http) {
    if (!found && !r["match"]) {
      route = static_cast<const YAML::Node&>(r);
      chosen = i;
      found = true;
    }
    ++i;
  }
  if (!found) route = static_cast<const YAML::Node&>(http[0]);
  *route_path = absl::StrCat(vs.where, ": spec.http[", chosen, "]");
  if (i > 1) {
    t->Warn(vs.where + ": spec.http",
            absl::StrCat("a channel has one route: carried over http[", chosen,
                         "] only (the default route); per-method routes need a channel each"));
  }
  if (route["match"]) {
    t->Warn(*route_path + ".match", "not carried over: a channel's calls all take this route");
  }
  return route;
}

// The weighted split of `route` over the service's subsets: (subset name,
// or "" for the whole service; weight), in the route's order, one entry
// per subset. Empty when the route sends nothing to a subset.
std::vector<std::pair<std::string, int64_t>> RouteSplit(const YAML::Node& route,
                                                        const std::string& route_path,
                                                        const Document& vs,
                                                        const std::string& target, Translator* t) {
  std::vector<std::pair<std::string, int64_t>> split;
  const YAML::Node dests = route["route"];
  if (!dests) return split;
  if (!dests.IsSequence()) throw Error{route_path + ".route: must be a list"};
  bool any_subset = false;
  size_t i = 0;
  for (const auto& dest : dests) {
    const std::string p = absl::StrCat(route_path, ".route[", i++, "]");
    const YAML::Node d = dest["destination"];
    if (!d) throw Error{p + ".destination: missing"};
    const std::string h = Scalar(d["host"], p + ".destination.host");
    // Istio: a lone destination takes all traffic; beside others, a
    // destination without a weight takes none.
    const int64_t weight =
        dest["weight"] ? Integer(dest["weight"], p + ".weight") : (dests.size() == 1 ? 100 : 0);
    if (weight < 0) throw Error{p + ".weight: must not be negative"};
    for (const auto& entry : dest) {
      const std::string key = entry.first.Scalar();
      if (key == "headers") {
        t->Warn(p + ".headers", "not carried over: lbkit balances calls; it does not add, set "
                                "or remove headers");
      } else if (key != "destination" && key != "weight") {
        t->Warn(p + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
    if (d["port"]) {
      t->Warn(p + ".destination.port", "not carried over: the channel's target names the port");
    }
    if (Fqdn(h, vs.ns) != target) {
      t->Warn(p, absl::StrCat("destination host \"", h, "\" is another service: ignored (a "
                              "channel balances over one service; its share goes to the "
                              "others)"));
      continue;
    }
    const std::string subset = d["subset"] ? Scalar(d["subset"], p + ".destination.subset") : "";
    any_subset = any_subset || !subset.empty();
    auto it = std::find_if(split.begin(), split.end(),
                           [&](const auto& entry) { return entry.first == subset; });
    if (it == split.end()) {
      split.emplace_back(subset, weight);
    } else {
      it->second += weight;
    }
  }
  if (!any_subset) split.clear();
  return split;
}

}  // namespace

absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml, absl::string_view host) {
  IstioTranslation out;
  std::vector<Document> docs;
  try {
    const std::vector<std::pair<YAML::Node, int>> nodes = LoadDocuments(yaml);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string where0 = absl::StrCat("document ", i + 1);
      CheckDuplicateKeys(nodes[i].first, nodes[i].second, where0);
      CollectDocuments(nodes[i].first, where0, &docs, &out.warnings);
    }
    Translator t(&out.warnings);
    auto host_of = [](const Document& d) -> std::string {
      if (d.kind == "DestinationRule") return Fqdn(Scalar(d.spec["host"], d.where + ": spec.host"), d.ns);
      return "";
    };
    auto vs_hosts = [](const Document& d) {
      std::vector<std::string> hosts;
      const YAML::Node h = d.spec["hosts"];
      if (!h) return hosts;
      if (!h.IsSequence()) throw Error{d.where + ": spec.hosts: must be a list"};
      size_t i = 0;
      for (const auto& x : h) {
        hosts.push_back(Fqdn(Scalar(x, absl::StrCat(d.where, ": spec.hosts[", i++, "]")), d.ns));
      }
      return hosts;
    };
    std::vector<const Document*> mesh_vs;
    for (const Document& d : docs) {
      if (d.kind != "VirtualService") continue;
      if (AppliesToMesh(d.spec)) {
        mesh_vs.push_back(&d);
      } else {
        t.Warn(d.where + ": spec.gateways", "skipped: the VirtualService applies to gateways "
                                            "only (no \"mesh\"), so a sidecar ignores it too");
      }
    }

    // The service to translate for, as Istio names it (an FQDN). A short
    // --host is read in each rule's namespace.
    std::string target;
    for (const Document& d : docs) {
      std::vector<std::string> hosts =
          d.kind == "DestinationRule" ? std::vector<std::string>{host_of(d)} : vs_hosts(d);
      if (d.kind == "VirtualService" &&
          std::find(mesh_vs.begin(), mesh_vs.end(), &d) == mesh_vs.end()) {
        continue;
      }
      for (const std::string& h : hosts) {
        if (target.empty() && !h.empty() && h.find('*') == std::string::npos &&
            (host.empty() || Fqdn(std::string(host), d.ns) == h)) {
          target = h;
        }
      }
      // The first DestinationRule names the service when no host is given.
      if (!target.empty() && (!host.empty() || d.kind == "DestinationRule")) break;
    }
    if (target.empty() && host.empty()) {
      for (const Document& d : docs) {
        if (d.kind == "DestinationRule") target = host_of(d);
        if (!target.empty()) break;
      }
    }
    if (target.empty()) {
      throw Error{host.empty() ? std::string("no DestinationRule or VirtualService in the input")
                               : absl::StrCat("no DestinationRule or VirtualService for host \"",
                                              host, "\"")};
    }

    // The most specific DestinationRules for the target, merged.
    int best = 0;
    for (const Document& d : docs) {
      if (d.kind == "DestinationRule") best = std::max(best, HostMatch(host_of(d), target));
    }
    std::vector<const Document*> rules;
    for (const Document& d : docs) {
      if (d.kind != "DestinationRule") continue;
      const int match = HostMatch(host_of(d), target);
      if (best > 0 && match == best) {
        rules.push_back(&d);
      } else if (match > 0) {
        t.Warn(d.where, absl::StrCat("a less specific DestinationRule for host \"", target,
                                     "\": ignored (Istio applies the most specific)"));
      } else {
        t.Warn(d.where, absl::StrCat("not for host \"", target, "\": ignored"));
      }
    }
    // The VirtualService: the most specific, the first of equals (Istio
    // gives a sidecar one VirtualService per host).
    const Document* vs = nullptr;
    int vs_best = 0;
    for (const Document* d : mesh_vs) {
      for (const std::string& h : vs_hosts(*d)) {
        const int match = HostMatch(h, target);
        if (match > vs_best) {
          vs_best = match;
          vs = d;
        }
      }
    }
    for (const Document* d : mesh_vs) {
      if (d == vs) continue;
      bool covers = false;
      for (const std::string& h : vs_hosts(*d)) covers = covers || HostMatch(h, target) > 0;
      t.Warn(d->where, covers ? absl::StrCat("another VirtualService for host \"", target,
                                             "\": ignored (a sidecar uses one per host)")
                              : absl::StrCat("not for host \"", target, "\": ignored"));
    }

    const MergedRule rule = MergeRules(rules, target, &t);
    Json::Object config;
    std::string route_path;
    const YAML::Node route =
        vs != nullptr ? ChooseRoute(*vs, &route_path, &t) : YAML::Node(YAML::NodeType::Undefined);
    if (vs != nullptr) {
      for (const auto& entry : vs->spec) {
        const std::string key = entry.first.Scalar();
        const std::string p = absl::StrCat(vs->where, ": spec.", key);
        if (key == "tcp" || key == "tls") {
          t.Warn(p, "not carried over: gRPC routes are http");
        } else if (key == "exportTo") {
          t.Warn(p, "not carried over: which namespaces see a rule is the cluster's concern; "
                    "lbkit applies it to this channel");
        } else if (key != "hosts" && key != "gateways" && key != "http") {
          t.Warn(p, "not carried over: lbkit has no equivalent");
        }
      }
    }

    const std::vector<std::pair<std::string, int64_t>> split =
        route ? RouteSplit(route, route_path, *vs, target, &t)
              : std::vector<std::pair<std::string, int64_t>>{};
    if (!split.empty()) {
      Json::Array subsets;
      int64_t total = 0;
      for (const auto& [name, weight] : split) {
        total += weight;
        if (name.empty()) {
          // The whole service beside its subsets: every endpoint.
          std::string whole = target;
          while (rule.Find(whole) != nullptr) whole += "#all";
          subsets.push_back(Json(Json::Object{
              {"name", Json(whole)},
              {"labels", Json(Json::Object{})},
              {"weight", Json(weight)},
              {"childPolicy", Json(t.Chain(rule.traffic_policy, YAML::Node(YAML::NodeType::Undefined),
                                           rule.traffic_policy_path, ""))}}));
          continue;
        }
        const MergedRule::Subset* found = rule.Find(name);
        if (found == nullptr) {
          throw Error{absl::StrCat(route_path, ": subset \"", name, "\" is not in ",
                                   rule.first == nullptr ? std::string("any DestinationRule")
                                                         : "the DestinationRule")};
        }
        Json::Object labels;
        if (found->node["labels"]) {
          for (const auto& l : found->node["labels"]) labels[l.first.Scalar()] = Json(l.second.Scalar());
        }
        subsets.push_back(Json(Json::Object{
            {"name", Json(name)},
            {"labels", Json(std::move(labels))},
            {"weight", Json(weight)},
            {"childPolicy",
             Json(t.Chain(rule.traffic_policy,
                          found->node["trafficPolicy"] ? found->node["trafficPolicy"]
                                                       : YAML::Node(YAML::NodeType::Undefined),
                          rule.traffic_policy_path, found->path + ".trafficPolicy"))}}));
      }
      if (total == 0) throw Error{route_path + ".route: the weights add up to 0"};
      config["loadBalancingConfig"] = Json(Json::Array{Json(
          Policy("lbkit_weighted_subsets", Json::Object{{"subsets", Json(std::move(subsets))}}))});
    } else {
      if (!rule.subsets.empty()) {
        t.Warn(rule.first->where + ": spec.subsets",
               "no VirtualService route sends traffic to a subset: the subsets are not used (as "
               "in Istio)");
      }
      config["loadBalancingConfig"] = Json(t.Chain(rule.traffic_policy,
                                                   YAML::Node(YAML::NodeType::Undefined),
                                                   rule.traffic_policy_path.empty()
                                                       ? std::string("spec.trafficPolicy")
                                                       : rule.traffic_policy_path,
                                                   ""));
    }
    Json::Object mc = MethodConfig(route, route_path, &t);
    if (mc.size() > 1) config["methodConfig"] = Json(Json::Array{Json(std::move(mc))});
    out.service_config = Json(std::move(config)).Dump();
    // Values are carried over as written, and the policies' parsers have
    // rules YAML cannot know (Maglev's table size is a prime, weights are
    // not all 0, ...). Checking here turns "translated fine, every RPC
    // fails" into an error at translation time (found by the fuzzer).
    const absl::Status valid = ValidateServiceConfig(out.service_config);
    if (!valid.ok()) {
      throw Error{absl::StrCat(rule.first != nullptr ? rule.first->where : vs->where,
                               ": translates to a service config lbkit rejects: ",
                               valid.message())};
    }
  } catch (const Error& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const YAML::InvalidNode& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("a field the translation needs is missing or of the wrong kind (", e.msg,
                     ")"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed YAML at line ", e.mark.line + 1, ", column ", e.mark.column + 1,
                     ": ", e.msg));
  }
  return out;
}

}  // namespace lbkit
