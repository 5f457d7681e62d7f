// lbkit::TranslateIstio(): Istio DestinationRule / VirtualService YAML to the
// service config of lbkit's policies. The policy chain for one traffic
// policy is, from the outside in: lbkit_circuit_breaker (connectionPool),
// lbkit_outlier_ejection (outlierDetection), lbkit_locality
// (localityLbSetting), then the balancing policy (loadBalancer). A
// VirtualService splitting traffic across subsets puts
// lbkit_weighted_subsets on top, with one such chain per subset.

#include "lbkit/istio.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
    auto pick = [&](const char* key, std::string* where) -> YAML::Node {
      if (over && over[key]) {
        *where = absl::StrCat(over_path, ".", key);
        return over[key];
      }
      *where = absl::StrCat(path, ".", key);
      return tp ? tp[key] : YAML::Node();
    };
    for (const YAML::Node* node : {&tp, &over}) {
      if (!*node) continue;
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
    if (lb && lb["localityLbSetting"]) {
      policy = Locality(lb["localityLbSetting"], lb_path + ".localityLbSetting", policy);
    }
    if (od) policy = Outlier(od, od_path, policy);
    if (cp) policy = Breaker(cp, cp_path, policy);
    return Json::Array{Json(std::move(policy))};
  }

  void Warn(const std::string& path, const std::string& why) {
    warnings_->push_back(absl::StrCat(path, ": ", why));
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
    for (const char* key : {"httpCookie", "useSourceIp", "httpQueryParameterName"}) {
      if (ch[key]) {
        Warn(absl::StrCat(path, ".", key),
             "not carried over: lbkit hashes a request header only (httpHeaderName); without "
             "one every call gets a random hash");
      }
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

  Json::Object Locality(const YAML::Node& ls, const std::string& path, Json::Object child) {
    if (ls["enabled"] && !Bool(ls["enabled"], path + ".enabled")) return child;
    Json::Object config;
    if (ls["distribute"]) {
      Json::Array rules;
      size_t i = 0;
      for (const auto& rule : ls["distribute"]) {
        const std::string p = absl::StrCat(path, ".distribute[", i++, "]");
        Json::Object to;
        for (const auto& entry : rule["to"]) {
          to[entry.first.Scalar()] = Json(Integer(entry.second, p + ".to." + entry.first.Scalar()));
        }
        rules.push_back(Json(Json::Object{{"from", Scalar(rule["from"], p + ".from")},
                                          {"to", Json(std::move(to))}}));
      }
      config["distribute"] = Json(std::move(rules));
    }
    if (ls["failover"]) {
      Json::Array rules;
      size_t i = 0;
      for (const auto& rule : ls["failover"]) {
        const std::string p = absl::StrCat(path, ".failover[", i++, "]");
        rules.push_back(Json(Json::Object{{"from", Scalar(rule["from"], p + ".from")},
                                          {"to", Scalar(rule["to"], p + ".to")}}));
      }
      config["failover"] = Json(std::move(rules));
    }
    if (ls["failoverPriority"]) {
      Json::Array keys;
      size_t i = 0;
      for (const auto& key : ls["failoverPriority"]) {
        keys.push_back(Json(Scalar(key, absl::StrCat(path, ".failoverPriority[", i++, "]"))));
      }
      config["failoverPriority"] = Json(std::move(keys));
    }
    config["childPolicy"] = Json(Json::Array{Json(std::move(child))});
    Warn(path, "the client's own locality comes from the LBKIT_LOCALITY environment "
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
        Warn(p, "deprecated in Istio (it counted gateway errors): carried over as "
                "consecutiveGatewayErrors");
        config["consecutiveGatewayErrors"] = Json(Integer(entry.second, p));
        known = true;
      }
      if (!known) Warn(p, "not carried over: lbkit_outlier_ejection has no such field");
    }
    config["childPolicy"] = Json(Json::Array{Json(std::move(child))});
    return Policy("lbkit_outlier_ejection", std::move(config));
  }

  Json::Object Breaker(const YAML::Node& cp, const std::string& path, Json::Object child) {
    std::optional<int64_t> max_requests;
    for (const auto& section : cp) {
      const std::string s = section.first.Scalar();
      for (const auto& entry : section.second) {
        const std::string key = entry.first.Scalar();
        const std::string p = absl::StrCat(path, ".", s, ".", key);
        if (s == "http" && key == "http2MaxRequests") {
          max_requests = Integer(entry.second, p);
        } else if (s == "http" && key == "idleTimeout") {
          Warn(p, absl::StrCat("set the channel argument grpc.client_idle_timeout_ms instead "
                               "(", Duration(entry.second, p), ")"));
        } else if (s == "tcp" && key == "tcpKeepalive") {
          Warn(p, "set the channel arguments grpc.keepalive_time_ms and "
                  "grpc.keepalive_timeout_ms instead");
        } else if (s == "tcp" && key == "maxConnections") {
          Warn(p, "not carried over: gRPC keeps one connection per endpoint");
        } else {
          Warn(p, "not carried over: gRPC queues calls inside the channel; only "
                  "http2MaxRequests has an lbkit equivalent (lbkit_circuit_breaker)");
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

// The method config of a VirtualService route: timeout and retries.
std::optional<Json::Object> MethodConfig(const YAML::Node& route, const std::string& path,
                                         Translator* t) {
  Json::Object mc;
  if (route["timeout"]) mc["timeout"] = Json(Duration(route["timeout"], path + ".timeout"));
  if (const YAML::Node retries = route["retries"]) {
    const std::string rp = path + ".retries";
    const int64_t attempts = retries["attempts"] ? Integer(retries["attempts"], rp + ".attempts") : 2;
    std::set<std::string> codes;
    const std::string retry_on = retries["retryOn"] ? Scalar(retries["retryOn"], rp + ".retryOn")
                                                    : "connect-failure,refused-stream,unavailable,cancelled";
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
      } else {
        t->Warn(rp + ".retryOn", absl::StrCat("\"", on, "\" has no gRPC status equivalent"));
      }
    }
    if (retries["perTryTimeout"]) {
      t->Warn(rp + ".perTryTimeout", "not carried over: gRPC 1.51's retry policy has no "
                                     "per-attempt timeout");
    }
    if (attempts > 0 && !codes.empty()) {
      // gRPC counts the first attempt and allows at most 5.
      if (attempts + 1 > 5) {
        t->Warn(rp + ".attempts", "gRPC allows at most 4 retries (maxAttempts 5)");
      }
      Json::Array list;
      for (const auto& c : codes) list.push_back(Json(c));
      mc["retryPolicy"] = Json(Json::Object{
          {"maxAttempts", Json(std::min<int64_t>(5, attempts + 1))},
          {"initialBackoff", Json("0.025s")},  // Envoy's base interval
          {"maxBackoff", Json("0.25s")},
          {"backoffMultiplier", Json(2)},
          {"retryableStatusCodes", Json(std::move(list))}});
    }
  }
  for (const auto& entry : route) {
    const std::string key = entry.first.Scalar();
    if (key != "timeout" && key != "retries" && key != "route" && key != "match" && key != "name") {
      t->Warn(path + "." + key, "not carried over: lbkit balances calls; it does not rewrite, "
                                "mirror or inject faults");
    }
  }
  if (mc.empty()) return std::nullopt;
  mc["name"] = Json(Json::Array{Json(Json::Object{})});  // every method
  return mc;
}

struct Document {
  std::string kind, name;
  YAML::Node spec;
  std::string where;  // "document 2 (VirtualService reviews)"
};

// YAML::LoadAll of yaml-cpp 0.7 (Debian 12's) never returns on a stream
// with a stray flow entry at block level (",", "- a\n,"): it appends empty
// documents until memory runs out (found by the fuzzer). So the stream is
// split at its document markers here and each document is loaded alone with
// YAML::Load, which stops after one. A line that is "---" or "..." (alone or
// followed by a space) is a marker wherever it stands, even inside a block
// scalar (YAML 1.2, c-forbidden), so splitting lines is exact.
std::vector<YAML::Node> LoadDocuments(absl::string_view yaml) {
  std::vector<YAML::Node> docs;
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
    if (!(at_marker && !seen_marker && node.IsNull())) docs.push_back(node);
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

}  // namespace

absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml, absl::string_view host) {
  IstioTranslation out;
  std::vector<Document> docs;
  try {
    const std::vector<YAML::Node> nodes = LoadDocuments(yaml);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const YAML::Node& node = nodes[i];
      if (node.IsNull()) continue;
      const std::string where0 = absl::StrCat("document ", i + 1);
      if (!node.IsMap()) throw Error{absl::StrCat(where0, ": not a YAML mapping")};
      Document d;
      d.kind = node["kind"] ? Scalar(node["kind"], where0 + ": kind") : "";
      d.name = node["metadata"] && node["metadata"]["name"] ? node["metadata"]["name"].Scalar() : "";
      d.where = absl::StrCat(where0, " (", d.kind.empty() ? "no kind" : d.kind,
                             d.name.empty() ? "" : " " + d.name, ")");
      const std::string api = node["apiVersion"] ? Scalar(node["apiVersion"], d.where) : "";
      if (d.kind != "DestinationRule" && d.kind != "VirtualService") {
        throw Error{absl::StrCat(d.where, ": kind must be DestinationRule or VirtualService")};
      }
      if (api != "networking.istio.io/v1beta1" && api != "networking.istio.io/v1" &&
          api != "networking.istio.io/v1alpha3") {
        throw Error{absl::StrCat(d.where, ": apiVersion \"", api,
                                 "\" is not networking.istio.io/v1beta1 or v1")};
      }
      if (!node["spec"] || !node["spec"].IsMap()) {
        throw Error{absl::StrCat(d.where, ": spec is missing")};
      }
      d.spec = node["spec"];
      docs.push_back(std::move(d));
    }
    // The DestinationRule for `host` (or the first one).
    const Document* dr = nullptr;
    for (const Document& d : docs) {
      if (d.kind != "DestinationRule") continue;
      const std::string h = d.spec["host"] ? Scalar(d.spec["host"], d.where + ": spec.host") : "";
      if (host.empty() || h == host) {
        dr = &d;
        break;
      }
    }
    if (dr == nullptr) {
      throw Error{host.empty() ? std::string("no DestinationRule in the input")
                               : absl::StrCat("no DestinationRule for host \"", host, "\"")};
    }
    const std::string dr_host = dr->spec["host"] ? dr->spec["host"].Scalar() : "";
    const Document* vs = nullptr;
    for (const Document& d : docs) {
      if (d.kind != "VirtualService" || !d.spec["hosts"]) continue;
      for (const auto& h : d.spec["hosts"]) {
        if (h.Scalar() == dr_host) vs = &d;
      }
      if (vs != nullptr) break;
    }
    for (const Document& d : docs) {
      if (&d != dr && &d != vs) {
        out.warnings.push_back(absl::StrCat(d.where, ": not for host \"", dr_host, "\"; ignored"));
      }
    }

    Translator t(&out.warnings);
    const std::string dr_path = dr->where + ": spec";
    const YAML::Node tp = dr->spec["trafficPolicy"];
    Json::Object config;

    // The VirtualService's route: the first http route without a match
    // (the default), else the first.
    YAML::Node route;
    std::string route_path;
    if (vs != nullptr && vs->spec["http"]) {
      size_t i = 0, chosen = 0;
      bool found = false;
      for (const auto& r : vs->spec["http"]) {
        if (!found && !r["match"]) {
          route = static_cast<const YAML::Node&>(r);
          chosen = i;
          found = true;
        }
        ++i;
      }
      if (!found && vs->spec["http"].size() > 0) {
        route = static_cast<const YAML::Node&>(vs->spec["http"][0]);
      }
      route_path = absl::StrCat(vs->where, ": spec.http[", chosen, "]");
      if (i > 1) {
        t.Warn(vs->where + ": spec.http",
               absl::StrCat("a channel has one route: carried over http[", chosen,
                            "] only (the default route); per-method routes need a channel each"));
      }
      if (route && route["match"]) {
        t.Warn(route_path + ".match", "not carried over: a channel's calls all take this route");
      }
    }
    for (const char* key : {"tcp", "tls"}) {
      if (vs != nullptr && vs->spec[key]) {
        t.Warn(absl::StrCat(vs->where, ": spec.", key), "not carried over: gRPC routes are http");
      }
    }

    // Weighted subsets when the route names them.
    bool subsets_used = false;
    if (route && route["route"]) {
      std::vector<std::pair<std::string, int64_t>> split;
      size_t i = 0;
      for (const auto& dest : route["route"]) {
        const std::string p = absl::StrCat(route_path, ".route[", i++, "]");
        const YAML::Node d = dest["destination"];
        if (!d) throw Error{p + ".destination: missing"};
        const std::string h = d["host"] ? Scalar(d["host"], p + ".destination.host") : "";
        if (h != dr_host) {
          t.Warn(p, absl::StrCat("destination host \"", h, "\" is another service: ignored"));
          continue;
        }
        const int64_t weight = dest["weight"] ? Integer(dest["weight"], p + ".weight") : 100;
        if (d["subset"]) split.emplace_back(Scalar(d["subset"], p + ".destination.subset"), weight);
      }
      if (!split.empty()) {
        subsets_used = true;
        Json::Array subsets;
        for (const auto& [name, weight] : split) {
          YAML::Node found;
          size_t index = 0, at = 0;
          if (dr->spec["subsets"]) {
            for (const auto& s : dr->spec["subsets"]) {
              if (s["name"] && s["name"].Scalar() == name) {
                found = static_cast<const YAML::Node&>(s);
                at = index;
              }
              ++index;
            }
          }
          if (!found) {
            throw Error{absl::StrCat(route_path, ": subset \"", name,
                                     "\" is not in the DestinationRule")};
          }
          Json::Object labels;
          if (found["labels"]) {
            for (const auto& l : found["labels"]) labels[l.first.Scalar()] = Json(l.second.Scalar());
          }
          subsets.push_back(Json(Json::Object{
              {"name", Json(name)},
              {"labels", Json(std::move(labels))},
              {"weight", Json(weight)},
              {"childPolicy", Json(t.Chain(tp, found["trafficPolicy"], dr_path + ".trafficPolicy",
                                           absl::StrCat(dr_path, ".subsets[", at,
                                                        "].trafficPolicy")))}}));
        }
        config["loadBalancingConfig"] = Json(Json::Array{Json(
            Policy("lbkit_weighted_subsets", Json::Object{{"subsets", Json(std::move(subsets))}}))});
      }
    }
    if (!subsets_used) {
      if (dr->spec["subsets"]) {
        t.Warn(dr_path + ".subsets", "no VirtualService route sends traffic to a subset: the "
                                     "subsets are not used (as in Istio)");
      }
      config["loadBalancingConfig"] = Json(t.Chain(tp, YAML::Node(), dr_path + ".trafficPolicy", ""));
    }
    for (const auto& entry : dr->spec) {
      const std::string key = entry.first.Scalar();
      if (key != "host" && key != "trafficPolicy" && key != "subsets") {
        t.Warn(dr_path + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
    if (route) {
      if (auto mc = MethodConfig(route, route_path, &t)) {
        config["methodConfig"] = Json(Json::Array{Json(std::move(*mc))});
      }
    }
    out.service_config = Json(std::move(config)).Dump();
    // Values are carried over as written, and the policies' parsers have
    // rules YAML cannot know (Maglev's table size is a prime, weights are
    // not all 0, ...). Checking here turns "translated fine, every RPC
    // fails" into an error at translation time (found by the fuzzer).
    const absl::Status valid = ValidateServiceConfig(out.service_config);
    if (!valid.ok()) {
      throw Error{absl::StrCat(dr->where, ": translates to a service config lbkit rejects: ",
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
