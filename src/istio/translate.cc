// lbkit::TranslateIstio(): Istio DestinationRule / VirtualService YAML to the
// service config of lbkit's policies. The policy chain for one traffic
// policy is, from the outside in: lbkit_circuit_breaker (connectionPool),
// lbkit_outlier_ejection (outlierDetection), lbkit_locality
// (localityLbSetting), then the balancing policy (loadBalancer). A
// VirtualService splitting traffic across subsets puts
// lbkit_weighted_subsets on top, with one such chain per subset.

#include "lbkit/istio.h"

#include <grpcpp/support/channel_arguments.h>
#include <nlohmann/json.hpp>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
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
#include "lbkit/channel.h"

namespace lbkit {

namespace {

using Json = nlohmann::json;

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

int64_t DurationMillis(const YAML::Node& node, const std::string& path) {
  const std::string text = Duration(node, path);
  double seconds = 0;
  absl::SimpleAtod(absl::string_view(text).substr(0, text.size() - 1), &seconds);
  return static_cast<int64_t>(std::llround(seconds * 1000));
}

// A JSON number written as a person would ("2", "0.5"), not "2.000000", nor
// as nlohmann's dump() writes some doubles ("2.4100799999999998" for 2.41008).
std::string NumberText(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// A StringMatch may be {"present": true}, whose value is no string.
std::string StringValue(const Json& json) {
  return json.is_string() ? json.get<std::string>() : std::string();
}

Json Policy(const std::string& name, Json config) {
  return Json::object({{name, std::move(config)}});
}

// nlohmann's dump() throws on a string that is not UTF-8, which YAML can
// bring in (raw bytes, "\0"). gRPC's JSON writer, which wrote the service
// config before, cut such a string at its NUL or first bad sequence; so does
// this. (An overlong sequence, which it read as its character, becomes that
// character's shortest form.)
std::string CutAtInvalidUtf8(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == 0) break;
    if (c < 0x80) {
      out.push_back(text[i]);
      continue;
    }
    const size_t extra = (c & 0xe0) == 0xc0   ? 1
                         : (c & 0xf0) == 0xe0 ? 2
                         : (c & 0xf8) == 0xf0 ? 3
                                              : 0;  // continuation bytes
    if (extra == 0 || i + extra >= text.size()) break;
    uint32_t code = c & (0x3f >> extra);  // the lead byte's bits
    bool valid = true;
    for (size_t k = 1; k <= extra && valid; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      valid = (next & 0xc0) == 0x80;
      code = code << 6 | (next & 0x3f);
    }
    if (!valid || (code >= 0xd800 && code <= 0xdfff) || code >= 0x110000) break;
    i += extra;
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xc0 | code >> 6));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | code >> 12));
      out.push_back(static_cast<char>(0x80 | (code >> 6 & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | code >> 18));
      out.push_back(static_cast<char>(0x80 | (code >> 12 & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code >> 6 & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }
  return out;
}

// Not nlohmann's dump() alone: its doubles (NumberText) and its strings that
// are not UTF-8 (CutAtInvalidUtf8) would change the text lbkit-istio has
// always printed: one line, keys in order, anything but printable ASCII
// escaped.
std::string Dump(const Json& json) {
  if (json.is_object() || json.is_array()) {
    std::string out(1, json.is_object() ? '{' : '[');
    for (auto it = json.begin(); it != json.end(); ++it) {
      if (it != json.begin()) out += ',';
      if (json.is_object()) absl::StrAppend(&out, Dump(Json(it.key())), ":");
      out += Dump(it.value());
    }
    out += json.is_object() ? '}' : ']';
    return out;
  }
  if (json.is_string()) {
    return Json(CutAtInvalidUtf8(json.get<std::string>())).dump(-1, ' ', /*ensure_ascii=*/true);
  }
  if (json.is_number_float()) return NumberText(json.get<double>());
  return json.dump();
}

class Translator {
 public:
  Translator(std::vector<std::string>* warnings, std::map<std::string, int>* channel_args, int port)
      : warnings_(warnings), channel_args_(channel_args), port_(port) {}

  // The policy chain (a loadBalancingConfig list) for `tp`, or for `tp`'s
  // sections overridden by `over` (a subset's trafficPolicy).
  Json Chain(const YAML::Node& tp, const YAML::Node& over, const std::string& path,
             const std::string& over_path) {
    // The sections in effect, as Istio merges them for the port the client
    // calls: the rule's, then its port's entry (which replaces all four:
    // port-level settings do not inherit), then the subset's section by
    // section, then the subset's port entry. A section no policy sets is
    // undefined, never a null node: `if (node)` is how every caller tells
    // "absent" (YAML::Node() is a defined null, which once turned a rule
    // without trafficPolicy into outlier ejection nobody asked for).
    static const char* const kSections[] = {"loadBalancer", "outlierDetection", "connectionPool",
                                            "tls"};
    std::map<std::string, std::pair<YAML::Node, std::string>> in_effect;
    auto apply = [&](const YAML::Node& from, const std::string& p, bool replace_all) {
      if (!from || !from.IsMap()) return;
      for (const char* key : kSections) {
        // Erase, then emplace: assigning over a YAML::Node would rebind the
        // node it shares (the rule's own section) to the subset's.
        if (from[key]) {
          in_effect.erase(key);
          in_effect.emplace(key, std::make_pair(from[key], absl::StrCat(p, ".", key)));
        } else if (replace_all) {
          in_effect.erase(key);
        }
      }
    };
    std::string port_path;
    apply(tp, path, false);
    const YAML::Node tp_port = PortSettings(tp, path, &port_path);
    apply(tp_port, port_path, true);
    apply(over, over_path, false);
    const YAML::Node over_port = PortSettings(over, over_path, &port_path);
    apply(over_port, port_path, true);
    auto section = [&](const char* key, std::string* where) -> YAML::Node {
      auto it = in_effect.find(key);
      if (it == in_effect.end()) return YAML::Node(YAML::NodeType::Undefined);
      *where = it->second.second;
      return it->second.first;
    };
    for (const YAML::Node* node : {&tp, &over, &tp_port, &over_port}) {
      if (!*node || !node->IsMap()) continue;
      const std::string& p = node == &tp ? path : node == &over ? over_path : port_path;
      for (const auto& entry : *node) {
        const std::string key = entry.first.Scalar();
        if (std::find(std::begin(kSections), std::end(kSections), key) != std::end(kSections) ||
            key == "port") {
          continue;
        }
        if (key == "portLevelSettings") {
          if (port_ == 0) {
            Warn(p + ".portLevelSettings",
                 "not carried over: give the Service port the client calls (lbkit-istio "
                 "--port=N, IstioOptions::port) to apply its entry, as Istio does");
          }
        } else {
          Warn(p + "." + key, "not carried over: lbkit has no equivalent");
        }
      }
    }
    std::string lb_path, od_path, cp_path, tls_path;
    const YAML::Node lb = section("loadBalancer", &lb_path);
    const YAML::Node od = section("outlierDetection", &od_path);
    const YAML::Node cp = section("connectionPool", &cp_path);
    if (section("tls", &tls_path)) {
      Warn(tls_path, "not carried over: transport security is the channel's credentials "
                     "(grpc::SslCredentials), not the balancing policy's");
    }

    Json policy = Leaf(lb, lb_path);
    policy = Locality(lb, lb_path, od, od_path, std::move(policy));
    if (od) policy = Outlier(od, od_path, policy);
    if (cp) policy = Breaker(cp, cp_path, policy);
    return Json::array({std::move(policy)});
  }

  // A channel argument Istio's connection settings map to. A channel has
  // one value: the first rule that sets it wins, and a differing value
  // elsewhere (another subset's) is named.
  void ChannelArg(const std::string& name, int64_t value, const std::string& path) {
    const int v = static_cast<int>(std::min<int64_t>(value, INT32_MAX));
    auto [it, inserted] = channel_args_->emplace(name, v);
    if (!inserted && it->second != v) {
      Warn(path, absl::StrCat("the channel argument ", name, " has one value per channel: ",
                              it->second, " (set first) is kept"));
    }
  }

  // TCP keepalive becomes gRPC's HTTP/2 keepalive: a PING after `time` idle,
  // the connection dead after interval x probes without an answer (what the
  // TCP probes would take), on idle connections too.
  void Keepalive(const YAML::Node& ka, const std::string& path) {
    if (!ka.IsMap()) throw Error{path + ": must be a mapping"};
    // Linux's defaults, which Istio leaves in place for absent fields.
    int64_t time_ms = 7200 * 1000, interval_ms = 75 * 1000, probes = 9;
    if (ka["time"]) time_ms = DurationMillis(ka["time"], path + ".time");
    if (ka["interval"]) interval_ms = DurationMillis(ka["interval"], path + ".interval");
    if (ka["probes"]) probes = Integer(ka["probes"], path + ".probes");
    if (probes < 1) throw Error{path + ".probes: must be at least 1"};
    ChannelArg("grpc.keepalive_time_ms", time_ms, path);
    ChannelArg("grpc.keepalive_timeout_ms", interval_ms * probes, path);
    ChannelArg("grpc.keepalive_permit_without_calls", 1, path);
    if (time_ms < 300 * 1000) {
      Warn(path + ".time", "carried over as gRPC keepalive PINGs: a gRPC server accepts them "
                           "this often only if it allows it (grpc.http2.min_ping_interval_"
                           "without_data_ms, 5 min by default, and grpc.keepalive_permit_"
                           "without_calls); otherwise it closes the connection (too_many_pings)");
    }
  }

  // The entry of `policy.portLevelSettings` for the client's port, or an
  // undefined node.
  YAML::Node PortSettings(const YAML::Node& policy, const std::string& path, std::string* where) {
    YAML::Node none(YAML::NodeType::Undefined);
    if (port_ == 0 || !policy || !policy.IsMap() || !policy["portLevelSettings"]) return none;
    const YAML::Node list = policy["portLevelSettings"];
    if (!list.IsSequence()) throw Error{path + ".portLevelSettings: must be a list"};
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = absl::StrCat(path, ".portLevelSettings[", i, "]");
      const YAML::Node port = list[i]["port"];
      if (!port || !port["number"]) throw Error{p + ".port.number: missing"};
      if (Integer(port["number"], p + ".port.number") == port_) {
        *where = p;
        return list[i];
      }
    }
    return none;
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
  Json Leaf(const YAML::Node& lb, const std::string& path) {
    if (!lb) return Policy("lbkit_least_request", Json::object());  // Istio's default since 1.14
    for (const auto& entry : lb) {
      const std::string key = entry.first.Scalar();
      if (key != "simple" && key != "consistentHash" && key != "localityLbSetting" &&
          key != "warmupDurationSecs" && key != "warmup") {
        Warn(path + "." + key, "not carried over: lbkit has no equivalent");
      }
    }
    std::optional<Json> slow_start = SlowStart(lb, path);
    auto with_slow_start = [&](const char* policy) {
      Json config = Json::object();
      if (slow_start.has_value()) config["slowStart"] = *slow_start;
      slow_start.reset();
      return Policy(policy, std::move(config));
    };
    Json out;
    if (lb["consistentHash"]) {
      out = Hash(lb["consistentHash"], path + ".consistentHash");
    } else if (!lb["simple"]) {
      out = with_slow_start("lbkit_least_request");
    } else {
      const std::string simple = Scalar(lb["simple"], path + ".simple");
      if (simple == "ROUND_ROBIN") {
        out = with_slow_start("lbkit_round_robin");
      } else if (simple == "LEAST_REQUEST" || simple == "LEAST_CONN" || simple == "UNSPECIFIED") {
        out = with_slow_start("lbkit_least_request");
      } else if (simple == "RANDOM") {
        Warn(path + ".simple", "RANDOM becomes lbkit_round_robin: the same long-run shares, "
                               "without the random picks' variance");
        out = Policy("lbkit_round_robin", Json::object());
      } else if (simple == "PASSTHROUGH") {
        Warn(path + ".simple", "PASSTHROUGH becomes gRPC's pick_first: the channel connects to "
                               "the first address the resolver returns");
        out = Policy("pick_first", Json::object());
      } else {
        throw Error{absl::StrCat(path, ".simple: \"", simple,
                                 "\" is not ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN, RANDOM or "
                                 "PASSTHROUGH")};
      }
    }
    if (slow_start.has_value()) {
      Warn(path + (lb["warmup"] ? ".warmup" : ".warmupDurationSecs"),
           "not carried over: Istio applies slow start to ROUND_ROBIN and LEAST_REQUEST only");
    }
    return out;
  }

  // Istio's warmupDurationSecs, or the newer warmup {duration,
  // minimumPercent, aggression}, as lbkit's slowStart (Envoy's slow start).
  std::optional<Json> SlowStart(const YAML::Node& lb, const std::string& path) {
    if (const YAML::Node w = lb["warmup"]) {
      const std::string p = path + ".warmup";
      if (!w.IsMap()) throw Error{p + ": must be a mapping"};
      Json out = Json::object({{"window", Duration(w["duration"], p + ".duration")}});
      if (w["minimumPercent"]) {
        double v = 0;
        if (!absl::SimpleAtod(Scalar(w["minimumPercent"], p + ".minimumPercent"), &v)) {
          throw Error{p + ".minimumPercent: must be a number"};
        }
        out["minWeightPercent"] = v;
      }
      if (w["aggression"]) {
        double v = 0;
        if (!absl::SimpleAtod(Scalar(w["aggression"], p + ".aggression"), &v)) {
          throw Error{p + ".aggression: must be a number"};
        }
        out["aggression"] = v;
      }
      if (lb["warmupDurationSecs"]) {
        Warn(path + ".warmupDurationSecs", "ignored: warmup is set too and takes precedence");
      }
      return out;
    }
    if (const YAML::Node w = lb["warmupDurationSecs"]) {
      return Json::object({{"window", Duration(w, path + ".warmupDurationSecs")}});
    }
    return std::nullopt;
  }

  Json Hash(const YAML::Node& ch, const std::string& path) {
    Json config = Json::object();
    if (ch["httpHeaderName"]) {
      config["requestHashHeader"] = absl::AsciiStrToLower(Scalar(ch["httpHeaderName"], path));
    }
    if (ch["useSourceIp"] && Bool(ch["useSourceIp"], path + ".useSourceIp")) {
      // Istio hashes the client's IP, so all of one client's calls stick
      // to one backend: lbkit hashes a key fixed for the process.
      config["useSourceIp"] = true;
    }
    if (ch["httpCookie"] && ch["httpCookie"].IsMap() && ch["httpCookie"]["ttl"]) {
      // With a ttl, Envoy makes the cookie from the client's connection
      // when a call has none; a gRPC client keeps no cookies, so all its
      // calls land on one backend, which is what useSourceIp does.
      config["useSourceIp"] = true;
      Warn(path + ".httpCookie", "carried over as useSourceIp: a gRPC client keeps no cookies, "
                                 "so Envoy would make one per connection and the client would "
                                 "stick to one backend");
    } else if (ch["httpCookie"]) {
      Warn(path + ".httpCookie", "not carried over: gRPC calls carry no cookies, and without a "
                                 "ttl Envoy makes none; every call hashes a random value");
    }
    if (ch["httpQueryParameterName"]) {
      Warn(path + ".httpQueryParameterName",
           "not carried over: gRPC calls have no query parameters; every call hashes a random "
           "value (hash a header with httpHeaderName)");
    }
    if (ch["maglev"]) {
      if (ch["maglev"]["tableSize"]) {
        config["tableSize"] = Integer(ch["maglev"]["tableSize"], path + ".maglev.tableSize");
      }
      return Policy("lbkit_maglev", std::move(config));
    }
    YAML::Node min = ch["ringHash"] ? ch["ringHash"]["minimumRingSize"] : ch["minimumRingSize"];
    if (min) {
      const int64_t size = Integer(min, path + ".minimumRingSize");
      config["minRingSize"] = size;
      // lbkit's default maximum (4096) would reject a larger minimum.
      if (size > 4096) config["maxRingSize"] = size;
    }
    return Policy("lbkit_ring_hash", std::move(config));
  }

  // Istio's locality load balancing (docs/istio.md, "Locality load
  // balancing"): on by default in the mesh; `distribute` applies on its
  // own, failover (by region or by failoverPriority) only together with
  // outlier detection, since without ejection no endpoint ever looks down.
  Json Locality(const YAML::Node& lb, const std::string& lb_path, const YAML::Node& od,
                const std::string& od_path, Json child) {
    const YAML::Node ls = lb && lb.IsMap() && lb["localityLbSetting"]
                              ? lb["localityLbSetting"]
                              : YAML::Node(YAML::NodeType::Undefined);
    const std::string path = lb_path + ".localityLbSetting";
    if (ls && ls["enabled"] && !Bool(ls["enabled"], path + ".enabled")) return child;
    Json config = Json::object();
    if (ls && ls["distribute"]) {
      Json rules = Json::array();
      size_t i = 0;
      for (const auto& rule : ls["distribute"]) {
        const std::string p = absl::StrCat(path, ".distribute[", i++, "]");
        Json to = Json::object();
        if (!rule["to"] || !rule["to"].IsMap()) throw Error{p + ".to: missing"};
        for (const auto& entry : rule["to"]) {
          to[entry.first.Scalar()] = Integer(entry.second, p + ".to." + entry.first.Scalar());
        }
        rules.push_back(
            Json::object({{"from", Scalar(rule["from"], p + ".from")}, {"to", std::move(to)}}));
      }
      config["distribute"] = std::move(rules);
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
        Json rules = Json::array();
        size_t i = 0;
        for (const auto& rule : ls["failover"]) {
          const std::string p = absl::StrCat(path, ".failover[", i++, "]");
          rules.push_back(Json::object({{"from", Scalar(rule["from"], p + ".from")},
                                        {"to", Scalar(rule["to"], p + ".to")}}));
        }
        config["failover"] = std::move(rules);
      }
      if (ls && ls["failoverPriority"]) {
        Json keys = Json::array();
        size_t i = 0;
        for (const auto& key : ls["failoverPriority"]) {
          const std::string kp = absl::StrCat(path, ".failoverPriority[", i++, "]");
          const std::string k = Scalar(key, kp);
          if ((absl::StartsWith(k, "topology.istio.io/cluster") ||
               absl::StartsWith(k, "topology.istio.io/network")) &&
              k.find('=') == std::string::npos) {
            Warn(kp, "Istio takes the client's and the endpoints' values from the proxies' "
                     "metadata; lbkit from lbkit_locality's clientLabels and the endpoints' "
                     "labels, so add both or this key compares empty values");
          }
          keys.push_back(k);
        }
        config["failoverPriority"] = std::move(keys);
      }
    }
    if (od) {
      // With outlier detection Istio sets Envoy's panic threshold to
      // minHealthPercent, 0 (never panic) unless given.
      config["panicThreshold"] =
          od.IsMap() && od["minHealthPercent"]
              ? Integer(od["minHealthPercent"], od_path + ".minHealthPercent")
              : 0;
    }
    config["childPolicy"] = Json::array({std::move(child)});
    constexpr char kClientLocality[] =
        "the client's own locality comes from the LBKIT_LOCALITY environment variable (or a "
        "\"locality\" field added to lbkit_locality), not from the proxy's node metadata";
    if (ls) {
      Warn(path, kClientLocality);
    } else {
      Warn(od_path, absl::StrCat("Istio's mesh default (localityLbSetting.enabled: true) turns "
                                 "on locality failover with outlier detection: lbkit_locality "
                                 "added; ", kClientLocality));
    }
    return Policy("lbkit_locality", std::move(config));
  }

  Json Outlier(const YAML::Node& od, const std::string& path, Json child) {
    Json config = Json::object();
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
          const int64_t n = Integer(entry.second, p);
          // Istio passes maxEjectionPercent on only when above 0.
          if (key != std::string("maxEjectionPercent") || n > 0) config[to] = n;
          known = true;
        }
      }
      for (const char* d : kDurations) {
        if (key == d) {
          config[key] = Duration(entry.second, p);
          known = true;
        }
      }
      if (key == "splitExternalLocalOriginErrors") {
        config[key] = Bool(entry.second, p);
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
    config["childPolicy"] = Json::array({std::move(child)});
    return Policy("lbkit_outlier_ejection", std::move(config));
  }

  Json Breaker(const YAML::Node& cp, const std::string& path, Json child) {
    // Why each connection-pool field has no lbkit equivalent.
    static const std::map<std::string, const char*> kReasons = {
        {"tcp.maxConnections", "not carried over: gRPC keeps one connection per endpoint"},
        {"tcp.maxConnectionDuration",
         "not carried over: gRPC clients do not age connections out (a server can, with "
         "grpc.max_connection_age_ms)"},
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
        } else if (key == "idleTimeout") {
          // Envoy closes a connection idle that long; a gRPC channel idle
          // that long goes IDLE and closes its connections (1 s at least).
          const int64_t ms = DurationMillis(entry.second, p);
          if (ms < 1000) Warn(p, "gRPC's idle timeout is 1 s at the least: 1 s is used");
          ChannelArg("grpc.client_idle_timeout_ms", std::max<int64_t>(1000, ms), p);
        } else if (s == "tcp" && key == "connectTimeout") {
          // gRPC gives each connection attempt at least this long (and at
          // least its current back-off interval); 100 ms at the least.
          const int64_t ms = DurationMillis(entry.second, p);
          if (ms < 100) Warn(p, "gRPC gives a connection attempt 100 ms at the least: 100 ms is used");
          ChannelArg("grpc.min_reconnect_backoff_ms", std::max<int64_t>(100, ms), p);
        } else if (s == "tcp" && key == "tcpKeepalive") {
          Keepalive(entry.second, p);
        } else if (auto it = kReasons.find(s + "." + key); it != kReasons.end()) {
          Warn(p, it->second);
        } else {
          Warn(p, "not carried over: lbkit has no equivalent");
        }
      }
    }
    if (!max_requests.has_value()) return child;
    Json config = Json::object({{"maxConcurrentRequests", *max_requests},
                                {"childPolicy", Json::array({std::move(child)})}});
    return Policy("lbkit_circuit_breaker", std::move(config));
  }

  std::vector<std::string>* warnings_;
  std::map<std::string, int>* channel_args_;
  const int port_;  // the Service port the client calls; 0 = not given
};

// Whether a StringMatch (as StringMatchJson writes it) holds for `value`;
// only for values known at translation.
bool StringMatchHolds(const Json& sm, const std::string& value) {
  const std::string& kind = sm.begin().key();
  if (kind == "present") return true;
  const std::string want = StringValue(sm.begin().value());
  if (kind == "exact") return value == want;
  if (kind == "prefix") return absl::StartsWith(value, want);
  RE2::Options options;
  options.set_log_errors(false);
  const RE2 re(want, options);
  return re.ok() && RE2::FullMatch(value, re);
}

// gRPC's status for an HTTP status, as gRPC maps them
// (doc/http-grpc-status-mapping.md in gRPC's repository).
std::string GrpcCodeForHttp(int64_t http) {
  switch (http) {
    case 400: return "INTERNAL";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "UNIMPLEMENTED";
    case 429: case 502: case 503: case 504: return "UNAVAILABLE";
    default: return "UNKNOWN";
  }
}

// Istio's retry policy for a route that sets none, including the default
// route of a host without any VirtualService: 2 retries on
// connect-failure, refused-stream, unavailable, cancelled and
// retriable-status-codes (docs/istio.md, "Default retries").
constexpr int64_t kIstioDefaultRetryAttempts = 2;
constexpr char kIstioDefaultRetryOn[] =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

// gRPC's retryPolicy for Istio's `retries` (absent: Istio's default).
std::optional<Json> RetryPolicy(const YAML::Node& retries, const std::string& rp, Translator* t) {
  const bool given = retries && retries.IsMap();
  // Given `retries`, Istio retries only with attempts > 0 (absent is 0).
  const int64_t attempts = !given ? kIstioDefaultRetryAttempts
                           : retries["attempts"] ? Integer(retries["attempts"], rp + ".attempts")
                                                 : 0;
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
      // Retries the HTTP codes listed beside it (numbers in retryOn, below);
      // Istio's default policy lists none.
    } else if (int http = 0; absl::SimpleAtoi(on, &http) && http >= 100 && http <= 599) {
      // An HTTP status: what a gRPC client sees of it.
      const std::string code = GrpcCodeForHttp(http);
      if (code == "UNKNOWN") {
        t->Warn(rp + ".retryOn", absl::StrCat("HTTP ", http, " reaches a gRPC client as UNKNOWN, "
                                              "which lbkit does not retry"));
      } else {
        codes.insert(code);
      }
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
  Json list = Json::array();
  for (const auto& c : codes) list.push_back(c);
  return Json::object({{"maxAttempts", std::min<int64_t>(5, attempts + 1)},
                       {"initialBackoff", initial},
                       {"maxBackoff", max},
                       {"backoffMultiplier", 2},
                       {"retryableStatusCodes", std::move(list)}});
}

// The method config of a VirtualService route (or of a host without one:
// `route` undefined): timeout and retries, for every method.
Json MethodConfig(const YAML::Node& route, const std::string& path, Translator* t) {
  Json mc = Json::object();
  if (route && route["timeout"]) mc["timeout"] = Duration(route["timeout"], path + ".timeout");
  const YAML::Node retries =
      route && route["retries"] ? route["retries"] : YAML::Node(YAML::NodeType::Undefined);
  if (auto policy = RetryPolicy(retries, path + ".retries", t)) {
    mc["retryPolicy"] = std::move(*policy);
  }
  mc["name"] = Json::array({Json::object()});  // every method
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

// One VirtualService http route as lbkit_routes takes it.
struct HttpRoute {
  std::string path;  // "document 2 (VirtualService reviews): spec.http[0]"
  YAML::Node node;
  std::string name;
  Json matches = Json::array();  // empty: every call
  std::optional<Json> abort;
  // (subset, or "" for the whole service; weight), one entry per subset.
  std::vector<std::pair<std::string, int64_t>> split;
  // gRPC's methodConfig names when the route matches by method path alone
  // ({} for a route that takes every call); empty when it cannot be one.
  std::vector<Json> method_names;
  // Takes every call (Istio's IsCatchAllRoute): routes after it are never
  // reached, and Istio does not even build them.
  bool catch_all = false;
};

// Istio's StringMatch as lbkit's; `{}` (presence) matches any value.
Json StringMatchJson(const YAML::Node& m, const std::string& p) {
  // `{}`, and regex "*" (not a valid RE2), mean "present" to Istio.
  if (m.IsNull() || (m.IsMap() && m.size() == 0) ||
      (m.IsMap() && m.size() == 1 && m["regex"] && m["regex"].IsScalar() &&
       m["regex"].Scalar() == "*")) {
    return Json::object({{"present", true}});
  }
  if (!m.IsMap() || m.size() != 1) throw Error{p + ": must set one of exact, prefix, regex"};
  const std::string kind = m.begin()->first.Scalar();
  if (kind != "exact" && kind != "prefix" && kind != "regex") {
    throw Error{absl::StrCat(p, ".", kind, ": is not exact, prefix or regex")};
  }
  return Json::object({{kind, Scalar(m.begin()->second, p + "." + kind)}});
}

class RouteTranslator {
 public:
  RouteTranslator(const Document& vs, const std::string& target, int port, Translator* t)
      : vs_(vs), target_(target), port_(port), t_(t) {}

  std::vector<HttpRoute> Routes() {
    std::vector<HttpRoute> out;
    const YAML::Node http = vs_.spec["http"];
    if (!http) return out;
    if (!http.IsSequence()) throw Error{vs_.where + ": spec.http: must be a list"};
    for (size_t i = 0; i < http.size(); ++i) {
      HttpRoute route;
      route.path = absl::StrCat(vs_.where, ": spec.http[", i, "]");
      route.node = http[i];
      if (!Translate(&route)) continue;
      const bool catch_all = route.catch_all;
      out.push_back(std::move(route));
      if (catch_all && i + 1 < http.size()) {
        t_->Warn(absl::StrCat(vs_.where, ": spec.http[", i + 1, "]"),
                 absl::StrCat("never reached: http[", i, "] takes every call (Istio builds no "
                              "route after it); left out with the routes after it"));
        break;
      }
    }
    return out;
  }

 private:
  // False when no call of this client can take the route, or it goes
  // elsewhere than the service; warned.
  bool Translate(HttpRoute* r) {
    const YAML::Node& n = r->node;
    if (!n.IsMap()) throw Error{r->path + ": must be a mapping"};
    r->name = n["name"] ? Scalar(n["name"], r->path + ".name") : "";
    if (!n["route"] && !n["redirect"] && !n["directResponse"] && !n["delegate"]) {
      throw Error{r->path + ": has no route, redirect, directResponse or delegate (Istio rejects "
                            "such a VirtualService)"};
    }
    for (const auto& entry : n) {
      const std::string key = entry.first.Scalar();
      if (key != "timeout" && key != "retries" && key != "route" && key != "match" &&
          key != "name" && key != "fault" && key != "redirect" && key != "directResponse" &&
          key != "delegate") {
        t_->Warn(r->path + "." + key, "not carried over: lbkit balances calls; it does not "
                                      "rewrite or mirror them");
      }
    }
    if (!Matches(r)) return false;
    Fault(r);
    if (n["delegate"]) {
      t_->Warn(r->path + ".delegate", "not carried over: delegation is for gateways; the route "
                                      "is left out and its calls take the next route that "
                                      "matches");
      return false;
    }
    // Envoy answers these itself: to a gRPC client, a failed call with the
    // gRPC code of the HTTP status.
    if (n["directResponse"] || n["redirect"]) {
      const bool direct = static_cast<bool>(n["directResponse"]);
      int64_t http = 301;
      if (direct) {
        http = Integer(n["directResponse"]["status"], r->path + ".directResponse.status");
      } else if (n["redirect"]["redirectCode"]) {
        http = Integer(n["redirect"]["redirectCode"], r->path + ".redirect.redirectCode");
      }
      const std::string code = GrpcCodeForHttp(http);
      t_->Warn(r->path + (direct ? ".directResponse" : ".redirect"),
               absl::StrCat("Envoy answers with HTTP ", http, ", which a gRPC client sees as ",
                            code, ": every call of the route fails with it"));
      r->abort = Json::object({{"percentage", 100.0}, {"code", code}});
      r->split.clear();
      return true;
    }
    Split(r);
    // The percentage as the service config writes it: 99.99999 aborts every call too.
    if (r->split.empty() &&
        !(r->abort && NumberText(r->abort->at("percentage").get<double>()) == "100")) {
      return false;
    }
    return true;
  }

  bool Matches(HttpRoute* r) {
    const YAML::Node match = r->node["match"];
    if (!match) {
      r->method_names.push_back(Json::object());
      r->catch_all = true;
      return true;
    }
    if (!match.IsSequence()) throw Error{r->path + ".match: must be a list"};
    bool method_only = true;
    std::vector<Json> names;
    for (size_t i = 0; i < match.size(); ++i) {
      const std::string p = absl::StrCat(r->path, ".match[", i, "]");
      std::optional<Json> name;
      if (auto m = MatchEntry(match[i], p, &name)) {
        r->matches.push_back(std::move(*m));
        if (name.has_value()) {
          names.push_back(std::move(*name));
        } else {
          method_only = false;
        }
      }
    }
    if (r->matches.empty()) {
      t_->Warn(r->path + ".match", "no entry can match a call of this client: the route is "
                                   "left out");
      return false;
    }
    // An entry without conditions (or with uri prefix "/" or regex ".*"
    // alone) takes every call, as Istio's IsCatchAllRoute says.
    for (const Json& entry : r->matches) {
      bool every = entry.empty();
      if (entry.size() == 1 && entry.count("method")) {
        const Json& sm = entry.at("method");
        every = (sm.count("prefix") && StringValue(sm.at("prefix")) == "/") ||
                (sm.count("regex") && StringValue(sm.at("regex")) == ".*");
      }
      if (every) {
        r->catch_all = true;
        r->matches.clear();
        r->method_names = {Json::object()};
        return true;
      }
    }
    if (method_only) r->method_names = std::move(names);
    return true;
  }

  // One match entry, or nullopt when no call of a client in the mesh can
  // satisfy it. `name`: its methodConfig name when it matches by method
  // path alone.
  std::optional<Json> MatchEntry(const YAML::Node& m, const std::string& p,
                                 std::optional<Json>* name) {
    if (!m.IsMap()) throw Error{p + ": must be a mapping"};
    Json out = Json::object();
    bool only_uri = true;
    for (const auto& entry : m) {
      const std::string key = entry.first.Scalar();
      const std::string kp = p + "." + key;
      if (key == "uri") {
        out["method"] = StringMatchJson(entry.second, kp);
      } else if (key == "ignoreUriCase") {
        if (Bool(entry.second, kp)) out["ignoreCase"] = true;
      } else if (key == "headers" || key == "withoutHeaders") {
        if (!entry.second.IsMap()) throw Error{kp + ": must be a mapping"};
        Json headers = Json::object();
        for (const auto& h : entry.second) {
          const std::string name = absl::AsciiStrToLower(h.first.Scalar());
          const std::string hp = kp + "." + h.first.Scalar();
          Json sm = StringMatchJson(h.second, hp);
          if (name == "content-type") {
            // gRPC sends application/grpc, below what a policy sees.
            const bool holds = StringMatchHolds(sm, "application/grpc");
            if (holds == (key == "headers")) continue;  // always true: no condition
            return std::nullopt;                        // never true
          }
          if (name == "te" || name == "user-agent" || absl::StartsWith(name, "grpc-") ||
              absl::StartsWith(name, ":")) {
            t_->Warn(hp, "gRPC sets this header itself, below what a balancing policy sees: "
                         "the entry is left out (it never matches)");
            return std::nullopt;
          }
          headers[name] = std::move(sm);
        }
        // Header conditions make the entry more than a method path: checked
        // before `headers` is moved from (a moved-from json reads as empty).
        only_uri = only_uri && headers.empty();
        if (!headers.empty()) out[key] = std::move(headers);
      } else if (key == "gateways") {
        bool mesh = false;
        for (const auto& g : entry.second) mesh = mesh || (g.IsScalar() && g.Scalar() == "mesh");
        if (!mesh) return std::nullopt;  // gateways only
      } else if (key == "method") {
        // Every gRPC call is an HTTP POST.
        const Json sm = StringMatchJson(entry.second, kp);
        const std::string kind = sm.begin().key(), value = StringValue(sm.begin().value());
        const bool post = kind == "exact" ? value == "POST"
                          : kind == "prefix" ? absl::StartsWith("POST", value)
                                             : true;
        if (kind == "regex") t_->Warn(kp, "a regex on the HTTP method is taken to match POST");
        if (!post) return std::nullopt;
      } else if (key == "port") {
        const int64_t port = Integer(entry.second, kp);
        if (port_ == 0) {
          t_->Warn(kp, "not checked: give the port the client calls (--port) to decide it");
        } else if (port != port_) {
          return std::nullopt;
        }
      } else if (key == "queryParams") {
        t_->Warn(kp, "gRPC calls have no query parameters: the entry never matches");
        return std::nullopt;
      } else if (key == "sourceLabels" || key == "sourceNamespace") {
        t_->Warn(kp, "not carried over: lbkit does not know the client's own labels or "
                     "namespace; the entry is left out (it never matches)");
        return std::nullopt;
      } else if (key == "authority" || key == "scheme") {
        t_->Warn(kp, "not checked: every call of a channel has the same authority and scheme");
        only_uri = false;
      } else if (key != "name" && key != "statPrefix") {
        t_->Warn(kp, "not carried over: lbkit has no equivalent; the condition is ignored");
        only_uri = false;
      }
    }
    if (only_uri && out.count("method") && !out.count("ignoreCase")) {
      *name = MethodName(out["method"]);
    }
    return out;
  }

  // {"service": "pkg.Svc", "method": "M"} for "/pkg.Svc/M" (exact), or
  // {"service": "pkg.Svc"} for the prefix "/pkg.Svc/".
  static std::optional<Json> MethodName(const Json& m) {
    const std::string kind = m.begin().key(), value = StringValue(m.begin().value());
    if (kind == "regex" || value.size() < 2 || value[0] != '/') return std::nullopt;
    const size_t slash = value.find('/', 1);
    if (slash == std::string::npos) return std::nullopt;
    const std::string service = value.substr(1, slash - 1), method = value.substr(slash + 1);
    if (service.empty()) return std::nullopt;
    if (kind == "exact" && !method.empty() && method.find('/') == std::string::npos) {
      return Json::object({{"service", service}, {"method", method}});
    }
    if (kind == "prefix" && method.empty()) return Json::object({{"service", service}});
    return std::nullopt;
  }

  void Fault(HttpRoute* r) {
    const YAML::Node fault = r->node["fault"];
    if (!fault) return;
    const std::string fp = r->path + ".fault";
    if (fault["delay"]) {
      t_->Warn(fp + ".delay", "not carried over: lbkit fails calls (abort) but does not delay them");
    }
    const YAML::Node abort = fault["abort"];
    if (!abort) return;
    const std::string ap = fp + ".abort";
    // Istio passes `percentage` on only when set, and Envoy aborts no call
    // without it; `percent` was removed from Istio's API.
    double percent = 0;
    if (abort["percent"]) {
      t_->Warn(ap + ".percent", "ignored: removed from Istio's API (use percentage.value); "
                                "Istio drops it");
    }
    if (abort["percentage"] && abort["percentage"].IsMap() && abort["percentage"]["value"]) {
      if (!absl::SimpleAtod(Scalar(abort["percentage"]["value"], ap + ".percentage.value"),
                            &percent)) {
        throw Error{ap + ".percentage.value: must be a number"};
      }
    }
    if (percent < 0 || percent > 100) throw Error{ap + ".percentage: must be in [0, 100]"};
    if (percent == 0) {
      t_->Warn(ap, "aborts no call: without percentage.value (or with 0) Envoy aborts none");
      return;
    }
    std::string code;
    if (abort["grpcStatus"]) {
      code = absl::AsciiStrToUpper(Scalar(abort["grpcStatus"], ap + ".grpcStatus"));
    } else if (abort["httpStatus"]) {
      const int64_t http = Integer(abort["httpStatus"], ap + ".httpStatus");
      code = GrpcCodeForHttp(http);
      t_->Warn(ap + ".httpStatus", absl::StrCat("HTTP ", http, " reaches a gRPC client as ",
                                                code));
    } else {
      t_->Warn(ap, "no grpcStatus or httpStatus: not carried over");
      return;
    }
    r->abort = Json::object({{"percentage", percent}, {"code", code}});
  }

  void Split(HttpRoute* r) {
    const YAML::Node dests = r->node["route"];
    if (!dests) return;
    if (!dests.IsSequence()) throw Error{r->path + ".route: must be a list"};
    bool any_subset = false;
    for (size_t i = 0; i < dests.size(); ++i) {
      const YAML::Node dest = dests[i];
      const std::string p = absl::StrCat(r->path, ".route[", i, "]");
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
          t_->Warn(p + ".headers", "not carried over: lbkit balances calls; it does not add, "
                                   "set or remove headers");
        } else if (key != "destination" && key != "weight") {
          t_->Warn(p + "." + key, "not carried over: lbkit has no equivalent");
        }
      }
      if (d["port"]) {
        t_->Warn(p + ".destination.port", "not carried over: the channel's target names the port");
      }
      if (Fqdn(h, vs_.ns) != target_) {
        t_->Warn(p, absl::StrCat("destination host \"", h, "\" is another service: ignored (a "
                                 "channel balances over one service; its share goes to the "
                                 "others)"));
        continue;
      }
      const std::string subset = d["subset"] ? Scalar(d["subset"], p + ".destination.subset") : "";
      any_subset = any_subset || !subset.empty();
      auto it = std::find_if(r->split.begin(), r->split.end(),
                             [&](const auto& entry) { return entry.first == subset; });
      if (it == r->split.end()) {
        r->split.emplace_back(subset, weight);
      } else {
        it->second += weight;
      }
    }
    int64_t total = 0;
    for (const auto& [name, weight] : r->split) total += weight;
    if (!r->split.empty() && total == 0) throw Error{r->path + ".route: the weights add up to 0"};
    if (r->split.empty() && dests.size() > 0) {
      t_->Warn(r->path, "every destination is another service: the route is left out");
    }
    if (any_subset || r->split.empty()) return;
    r->split = {{"", 1}};
  }

  const Document& vs_;
  const std::string& target_;
  const int port_;
  Translator* t_;
};

// The balancing policy for the routes (none: the rule's chain alone).
// One route to the whole service is the rule's chain; one route that
// matches every call is lbkit_weighted_subsets; anything else (several
// routes, a match, a fault) is lbkit_routes.
Json RoutingPolicy(const std::vector<HttpRoute>& routes, const MergedRule& rule,
                   const std::string& target, Translator* t) {
  const YAML::Node undefined(YAML::NodeType::Undefined);
  auto chain = [&](const std::string& subset, const std::string& route_path) -> Json {
    if (subset.empty()) {
      return t->Chain(rule.traffic_policy, undefined, rule.traffic_policy_path, "");
    }
    const MergedRule::Subset* found = rule.Find(subset);
    if (found == nullptr) {
      throw Error{absl::StrCat(route_path, ": subset \"", subset, "\" is not in ",
                               rule.first == nullptr ? std::string("any DestinationRule")
                                                     : "the DestinationRule")};
    }
    const YAML::Node tp = found->node["trafficPolicy"] ? found->node["trafficPolicy"] : undefined;
    return t->Chain(rule.traffic_policy, tp, rule.traffic_policy_path,
                    found->path + ".trafficPolicy");
  };
  // The whole service beside named subsets: every endpoint.
  std::string whole = target;
  while (rule.Find(whole) != nullptr) whole += "#all";
  auto labels = [&](const std::string& subset) {
    Json out = Json::object();
    if (const MergedRule::Subset* found = rule.Find(subset); found && found->node["labels"]) {
      for (const auto& l : found->node["labels"]) out[l.first.Scalar()] = l.second.Scalar();
    }
    return out;
  };
  const bool one_default = routes.size() == 1 && routes[0].matches.empty() && !routes[0].abort;
  if (routes.empty() || (one_default && routes[0].split.size() == 1 &&
                         routes[0].split[0].first.empty())) {
    if (!rule.subsets.empty()) {
      t->Warn(rule.first->where + ": spec.subsets",
              "no VirtualService route sends traffic to a subset: the subsets are not used (as "
              "in Istio)");
    }
    return chain("", "")[0];
  }
  if (one_default) {
    Json subsets = Json::array();
    for (const auto& [name, weight] : routes[0].split) {
      subsets.push_back(Json::object({{"name", name.empty() ? whole : name},
                                      {"labels", labels(name)},
                                      {"weight", weight},
                                      {"childPolicy", chain(name, routes[0].path)}}));
    }
    if (routes[0].split.size() > 1) {
      t->Warn(routes[0].path + ".route",
              "a gRPC retry picks again, possibly in another subset (Envoy retries inside the "
              "one it chose)");
    }
    return Policy("lbkit_weighted_subsets", Json::object({{"subsets", std::move(subsets)}}));
  }
  Json subsets = Json::array(), out_routes = Json::array();
  std::set<std::string> added;
  bool catch_all = false;
  for (const HttpRoute& r : routes) {
    Json route = Json::object();
    route["name"] = r.name.empty() ? r.path.substr(r.path.rfind("spec.") + 5) : r.name;
    if (!r.matches.empty()) route["match"] = r.matches;
    catch_all = catch_all || r.matches.empty();
    if (r.abort) route["abort"] = *r.abort;
    Json split = Json::array();
    for (const auto& [name, weight] : r.split) {
      const std::string subset = name.empty() ? whole : name;
      if (added.insert(subset).second) {
        subsets.push_back(Json::object({{"name", subset},
                                        {"labels", labels(name)},
                                        {"childPolicy", chain(name, r.path)}}));
      }
      split.push_back(Json::object({{"subset", subset}, {"weight", weight}}));
    }
    if (split.size() > 1) {
      t->Warn(r.path + ".route", "a gRPC retry picks again, possibly in another subset (Envoy "
                                 "retries inside the one it chose)");
    }
    if (!split.empty()) route["split"] = std::move(split);
    out_routes.push_back(std::move(route));
  }
  if (!catch_all) {
    t->Warn(routes.back().path, "no route without a match: as with Istio (404), a call no route "
                                "matches fails, with UNIMPLEMENTED");
  }
  if (subsets.empty()) {
    // Routes that only abort still need the service's endpoints somewhere.
    subsets.push_back(Json::object({{"name", whole}, {"childPolicy", chain("", "")}}));
  }
  return Policy("lbkit_routes", Json::object({{"subsets", std::move(subsets)},
                                              {"routes", std::move(out_routes)}}));
}

// gRPC's methodConfig for the routes' timeouts and retries. gRPC applies
// them per method, and prefers an exact method over a service over the
// default; Istio takes the first route that matches. So a route carries its
// settings over when it matches by method path alone, for the methods no
// earlier route took; the default entry is the catch-all route's, or, when
// no route takes every call, the first header-matched route's (the calls
// no route matches fail without reaching gRPC's retries). Every route has
// settings: a route without `retries` has Istio's default retries, and one
// with `attempts: 0` none, so its entry is written even when empty.
Json MethodConfigs(const std::vector<HttpRoute>& routes, Translator* t) {
  Json out = Json::array();
  if (routes.empty()) {
    Json mc = MethodConfig(YAML::Node(YAML::NodeType::Undefined), "", t);
    if (mc.size() > 1) out.push_back(std::move(mc));
    return out;
  }
  const bool has_catch_all =
      std::any_of(routes.begin(), routes.end(), [](const HttpRoute& r) { return r.catch_all; });
  std::set<std::string> services, methods;
  bool have_default = false;
  const HttpRoute* default_from_headers = nullptr;
  for (const HttpRoute& r : routes) {
    Json names = Json::array();
    for (const Json& n : r.method_names) {
      if (n.empty()) {
        if (!have_default) names.push_back(n);
        have_default = true;
        continue;
      }
      const std::string service = n.at("service").get<std::string>();
      if (services.count(service)) continue;  // an earlier route took the whole service
      if (n.count("method")) {
        if (methods.insert(service + "/" + n.at("method").get<std::string>()).second) {
          names.push_back(n);
        }
      } else {
        services.insert(service);
        names.push_back(n);
      }
    }
    if (r.method_names.empty()) {
      if (!has_catch_all && default_from_headers == nullptr) {
        default_from_headers = &r;
      } else if (r.node["timeout"] || r.node["retries"]) {
        t->Warn(r.path, "its timeout and retries are not carried over: gRPC applies them per "
                        "method, and this route matches more than the method path; its calls "
                        "get the settings of their method");
      }
      continue;
    }
    if (names.empty()) continue;
    Json mc = MethodConfig(r.node, r.path, t);
    mc["name"] = std::move(names);
    out.push_back(std::move(mc));
  }
  if (!have_default && default_from_headers != nullptr) {
    out.push_back(MethodConfig(default_from_headers->node, default_from_headers->path, t));
  }
  return out;
}

}  // namespace

absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml, absl::string_view host) {
  IstioOptions options;
  options.host = std::string(host);
  return TranslateIstio(yaml, options);
}

void IstioTranslation::ApplyTo(grpc::ChannelArguments* args) const {
  args->SetServiceConfigJSON(service_config);
  for (const auto& [name, value] : channel_args) args->SetInt(name, value);
}

absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml,
                                                const IstioOptions& options) {
  const absl::string_view host = options.host;
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", options.port, " is not a port number (1-65535, or 0 for none)"));
  }
  IstioTranslation out;
  std::vector<Document> docs;
  try {
    const std::vector<std::pair<YAML::Node, int>> nodes = LoadDocuments(yaml);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string where0 = absl::StrCat("document ", i + 1);
      CheckDuplicateKeys(nodes[i].first, nodes[i].second, where0);
      CollectDocuments(nodes[i].first, where0, &docs, &out.warnings);
    }
    // A later object with the same kind, namespace and name replaces an
    // earlier one, as `kubectl apply` of the stream would. (The kept ones
    // are moved into a new vector: assigning a YAML::Node rebinds the node
    // it shares, so erasing from the middle would corrupt the others.)
    std::vector<Document> kept;
    for (size_t i = 0; i < docs.size(); ++i) {
      const Document* later = nullptr;
      for (size_t j = i + 1; j < docs.size() && !docs[i].name.empty() && later == nullptr; ++j) {
        if (docs[j].kind == docs[i].kind && docs[j].name == docs[i].name &&
            (docs[j].ns.empty() ? "default" : docs[j].ns) ==
                (docs[i].ns.empty() ? "default" : docs[i].ns)) {
          later = &docs[j];
        }
      }
      if (later == nullptr) {
        kept.push_back(std::move(docs[i]));
      } else {
        out.warnings.push_back(absl::StrCat(docs[i].where, ": replaced by ", later->where,
                                            " (same kind, namespace and name), as kubectl "
                                            "apply would"));
      }
    }
    docs.swap(kept);
    Translator t(&out.warnings, &out.channel_args, options.port);
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
    size_t gateway_only = 0;
    for (const Document& d : docs) {
      if (d.kind != "VirtualService") continue;
      if (AppliesToMesh(d.spec)) {
        mesh_vs.push_back(&d);
      } else {
        ++gateway_only;
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
    if (target.empty() && !host.empty()) {
      // Only wildcard rules can cover it (a VirtualService for "*").
      const std::string candidate = Fqdn(std::string(host), docs.empty() ? "" : docs[0].ns);
      bool covered = false;
      for (const Document& d : docs) {
        if (d.kind == "DestinationRule") covered = covered || HostMatch(host_of(d), candidate) > 0;
      }
      for (const Document* d : mesh_vs) {
        for (const std::string& h : vs_hosts(*d)) covered = covered || HostMatch(h, candidate) > 0;
      }
      if (covered) target = candidate;
    }
    if (target.empty()) {
      const std::string why =
          gateway_only == 0 ? ""
                            : absl::StrCat(" (", gateway_only, " VirtualService",
                                           gateway_only == 1 ? " is" : "s are",
                                           " bound to gateways only, which a client in the mesh "
                                           "does not see)");
      throw Error{host.empty() ? absl::StrCat("no DestinationRule or VirtualService in the input",
                                              why)
                               : absl::StrCat("no DestinationRule or VirtualService for host \"",
                                              host, "\"", why)};
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
    const std::vector<HttpRoute> routes =
        vs != nullptr ? RouteTranslator(*vs, target, options.port, &t).Routes()
                      : std::vector<HttpRoute>{};
    if (vs != nullptr && routes.empty() && vs->spec["http"] && vs->spec["http"].size() > 0) {
      t.Warn(vs->where + ": spec.http", "no route can be carried over: calls are balanced over "
                                        "the whole service with Istio's default retries");
    }
    Json config = Json::object();
    config["loadBalancingConfig"] = Json::array({RoutingPolicy(routes, rule, target, &t)});
    Json method_configs = MethodConfigs(routes, &t);
    if (!method_configs.empty()) config["methodConfig"] = std::move(method_configs);
    out.service_config = Dump(config);
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
