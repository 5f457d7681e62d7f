// greeter_client: a closed-loop load generator that shows how a gRPC
// load-balancing policy spreads RPCs over greeter_server backends.
//
// It registers lbkit's policies, opens one channel to --target with the given
// service config, warms up until every backend has answered, then sends
// exactly --rpcs SayHello RPCs from --concurrency threads and reports, per
// backend, how many RPCs it served, plus errors, throughput and latency. With
// --json the report is one JSON object on stdout (the format tests and
// benchmarks parse); otherwise a table. Failed RPCs are reported, not fatal:
// the exit status is non-zero only for bad flags or a channel that cannot be
// created.

#include <grpcpp/grpcpp.h>
#include <ratio>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "greeter.grpc.pb.h"
#include "lbkit/channel.h"
#include "lbkit/lbkit.h"
#include "lbkit/stats.h"
#include "status_codes.h"

ABSL_FLAG(std::string, target, "",
          "Channel target URI, e.g. ipv4:127.0.0.1:50051,127.0.0.1:50052 (required).");
ABSL_FLAG(std::string, service_config, "",
          "Service config JSON, or @FILE to read it from FILE. Empty: gRPC's default "
          "(pick_first).");
ABSL_FLAG(int32_t, rpcs, 1000, "Number of measured RPCs.");
ABSL_FLAG(int32_t, concurrency, 1,
          "RPCs in flight at once: this many threads, each sending its next RPC as "
          "soon as its last one finished.");
ABSL_FLAG(int32_t, deadline_ms, 1000, "Deadline of each RPC, in milliseconds.");
ABSL_FLAG(int32_t, hash_keys, 0,
          "If > 0, RPC i carries the metadata 'x-user-id: user-<i mod hash_keys>', and "
          "the report says which backends served each key.");
ABSL_FLAG(int32_t, expect_backends, 0,
          "Warm up until this many distinct backends have answered. 0: the number of "
          "addresses in an ipv4: or ipv6: target, otherwise 1.");
ABSL_FLAG(int32_t, warmup_ms, 3000,
          "Upper bound on the warm-up (connecting plus warm-up RPCs), in milliseconds; "
          "0 skips the warm-up.");
ABSL_FLAG(int32_t, duration_ms, 0,
          "If > 0, stop sending after this many milliseconds of measurement (--rpcs "
          "is then an upper bound).");
ABSL_FLAG(int32_t, timeline_ms, 0,
          "If > 0, the JSON report has a timeline: RPCs finished per backend and failed, "
          "in buckets of this many milliseconds from the start of the measurement "
          "(wall-clock start in start_unix_ms, to line up with outside events).");
ABSL_FLAG(int32_t, admin_port, -1,
          "If >= 0, serve lbkit's /metrics and /lbkit/state on 127.0.0.1:PORT (0 picks "
          "a port) while running.");
ABSL_FLAG(bool, print_state, false,
          "After the run, print lbkit::DumpState() (where every call went) to stderr.");
ABSL_FLAG(bool, print_metrics, false,
          "After the run, print lbkit::PrometheusText() to stderr.");
ABSL_FLAG(bool, json, false, "Print the report as one JSON object on stdout.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates: connect with TLS, verifying the servers against them.");
ABSL_FLAG(std::string, tls_server_name, "",
          "With TLS: the name the servers' certificates must carry (default: the "
          "target's authority).");
ABSL_FLAG(std::string, tls_cert, "", "With TLS: a PEM client certificate chain (mTLS).");
ABSL_FLAG(std::string, tls_key, "", "With TLS: the PEM private key of --tls_cert.");
ABSL_FLAG(bool, print_errors, false,
          "Log the first few distinct error messages of the measured RPCs to stderr.");

namespace lbkit_examples {
namespace {

using lbkit::examples::Greeter;
using lbkit::examples::HelloReply;
using lbkit::examples::HelloRequest;
using Clock = std::chrono::steady_clock;

constexpr char kHashKeyHeader[] = "x-user-id";
constexpr int kMaxConcurrency = 4096;
constexpr size_t kMaxDistinctErrorsPrinted = 10;
// After a failed warm-up RPC: long enough not to spin on a channel that fails
// every RPC at once, short enough not to matter next to a reconnect.
constexpr auto kWarmupRetryPause = std::chrono::milliseconds(10);

void Log(absl::string_view message) {
  absl::FPrintF(stderr, "greeter_client: %s\n", message);
}

struct Options {
  std::string target;
  std::string service_config;  // JSON, already read from its file
  int rpcs = 0;
  int concurrency = 0;
  std::chrono::milliseconds deadline{0};
  int hash_keys = 0;
  int expect_backends = 0;
  std::chrono::milliseconds warmup{0};
  bool json = false;
  bool print_errors = false;
  std::chrono::milliseconds duration{0};  // 0: --rpcs decides
  int timeline_ms = 0;
};

// The number of addresses in an "ipv4:" or "ipv6:" target, whose resolvers
// take a comma-separated list; 1 for any other scheme, where it is unknown.
int CountTargetAddresses(absl::string_view target) {
  if (!absl::StartsWith(target, "ipv4:") && !absl::StartsWith(target, "ipv6:")) return 1;
  absl::string_view addresses = target.substr(5);
  absl::ConsumePrefix(&addresses, "//");  // "ipv4:///a,b" has an empty authority
  absl::ConsumePrefix(&addresses, "/");
  int count = 0;
  for (absl::string_view address : absl::StrSplit(addresses, ',')) {
    if (!address.empty()) ++count;
  }
  return std::max(count, 1);
}

// Reads the flags into `options`; returns an error message if one is invalid.
std::optional<std::string> ParseOptions(Options* options) {
  options->target = absl::GetFlag(FLAGS_target);
  if (options->target.empty()) return std::string("--target is required");

  options->service_config = absl::GetFlag(FLAGS_service_config);
  if (absl::StartsWith(options->service_config, "@")) {
    const std::string path = options->service_config.substr(1);
    std::ifstream file(path, std::ios::binary);
    std::stringstream contents;
    if (file.is_open()) contents << file.rdbuf();
    if (!file.is_open() || file.bad()) {
      return absl::StrCat("--service_config: cannot read \"", path, "\"");
    }
    options->service_config = contents.str();
  }

  options->rpcs = absl::GetFlag(FLAGS_rpcs);
  if (options->rpcs < 0) return absl::StrCat("--rpcs must be >= 0, not ", options->rpcs);
  options->concurrency = absl::GetFlag(FLAGS_concurrency);
  if (options->concurrency < 1 || options->concurrency > kMaxConcurrency) {
    return absl::StrCat("--concurrency must be in [1, ", kMaxConcurrency, "], not ",
                        options->concurrency);
  }
  const int deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  if (deadline_ms < 1) return absl::StrCat("--deadline_ms must be >= 1, not ", deadline_ms);
  options->deadline = std::chrono::milliseconds(deadline_ms);
  options->hash_keys = absl::GetFlag(FLAGS_hash_keys);
  if (options->hash_keys < 0) {
    return absl::StrCat("--hash_keys must be >= 0, not ", options->hash_keys);
  }
  options->expect_backends = absl::GetFlag(FLAGS_expect_backends);
  if (options->expect_backends < 0) {
    return absl::StrCat("--expect_backends must be >= 0, not ", options->expect_backends);
  }
  if (options->expect_backends == 0) {
    options->expect_backends = CountTargetAddresses(options->target);
  }
  const int warmup_ms = absl::GetFlag(FLAGS_warmup_ms);
  if (warmup_ms < 0) return absl::StrCat("--warmup_ms must be >= 0, not ", warmup_ms);
  options->warmup = std::chrono::milliseconds(warmup_ms);
  const int duration_ms = absl::GetFlag(FLAGS_duration_ms);
  if (duration_ms < 0) return absl::StrCat("--duration_ms must be >= 0, not ", duration_ms);
  options->duration = std::chrono::milliseconds(duration_ms);
  options->timeline_ms = absl::GetFlag(FLAGS_timeline_ms);
  if (options->timeline_ms < 0) {
    return absl::StrCat("--timeline_ms must be >= 0, not ", options->timeline_ms);
  }
  options->json = absl::GetFlag(FLAGS_json);
  options->print_errors = absl::GetFlag(FLAGS_print_errors);
  return std::nullopt;
}

std::string HashKey(int64_t index, int hash_keys) {
  return absl::StrCat("user-", index % hash_keys);
}

struct RpcResult {
  Clock::duration latency{};
  Clock::time_point done{};
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string backend;        // set if code is OK
  std::string error_message;  // set otherwise
};

// One SayHello. `index` picks the hash key, if keys are in use.
RpcResult CallOnce(Greeter::Stub& stub, const Options& options, int64_t index,
                   std::chrono::milliseconds deadline) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  if (options.hash_keys > 0) {
    context.AddMetadata(kHashKeyHeader, HashKey(index, options.hash_keys));
  }
  HelloRequest request;
  request.set_name("greeter_client");
  HelloReply reply;

  const Clock::time_point start = Clock::now();
  const grpc::Status status = stub.SayHello(&context, request, &reply);
  RpcResult result;
  result.done = Clock::now();
  result.latency = result.done - start;
  result.code = status.error_code();
  if (status.ok()) {
    result.backend = std::move(*reply.mutable_backend());
  } else {
    result.error_message = status.error_message();
  }
  return result;
}

// Brings the channel to READY and sends unmeasured RPCs until
// options.expect_backends distinct backends have answered, so that the
// measurement does not include connection set-up or see a policy before all
// of its backends are up. Gives up, with a warning, after options.warmup.
void WarmUp(grpc::Channel& channel, Greeter::Stub& stub, const Options& options) {
  if (options.warmup.count() == 0) return;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + options.warmup;
  auto elapsed_ms = [start] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };

  if (!channel.WaitForConnected(std::chrono::system_clock::now() + options.warmup)) {
    Log(absl::StrCat("warm-up: the channel is not READY after ", elapsed_ms(),
                     " ms; measuring anyway"));
    return;
  }
  std::set<std::string> backends;
  int64_t sent = 0;
  std::optional<RpcResult> last_failure;
  while (static_cast<int>(backends.size()) < options.expect_backends) {
    const Clock::time_point now = Clock::now();
    if (now >= end) break;
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(end - now);
    RpcResult result = CallOnce(stub, options, sent++, std::min(options.deadline, remaining));
    if (result.code == grpc::StatusCode::OK) {
      backends.insert(std::move(result.backend));
    } else {
      last_failure = std::move(result);
      std::this_thread::sleep_for(kWarmupRetryPause);
    }
  }
  if (static_cast<int>(backends.size()) < options.expect_backends) {
    std::string message = absl::StrCat("warm-up: ", backends.size(), " of ",
                                       options.expect_backends, " expected backends answered ",
                                       sent, " RPCs in ", elapsed_ms(), " ms");
    if (last_failure) {
      absl::StrAppend(&message, "; last error ", StatusCodeName(last_failure->code), ": ",
                      last_failure->error_message);
    }
    Log(absl::StrCat(message, "; measuring anyway (see --expect_backends)"));
  }
}

// Process CPU time (user + system, every thread: gRPC's own included), in
// microseconds; the benchmarks divide it by the RPCs sent.
double ProcessCpuUs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto us = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

// Sends the measured RPCs. Each thread takes the next unsent index until all
// options.rpcs are taken (or options.duration has passed), so the total is
// exact however the threads progress. `results` ends with the RPCs sent, in
// index order; `start_unix` is when the measurement began, in wall time.
Clock::duration RunLoad(Greeter::Stub& stub, const Options& options,
                        std::vector<RpcResult>* results, double* cpu_us,
                        Clock::time_point* start_out,
                        std::chrono::system_clock::time_point* start_unix) {
  std::atomic<int64_t> next{0};
  std::vector<std::vector<std::pair<int64_t, RpcResult>>> per_thread(options.concurrency);
  const double cpu_start = ProcessCpuUs();
  *start_unix = std::chrono::system_clock::now();
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      options.duration.count() > 0 ? start + options.duration : Clock::time_point::max();
  auto worker = [&](std::vector<std::pair<int64_t, RpcResult>>* mine) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed);
         i < options.rpcs && Clock::now() < end; i = next.fetch_add(1, std::memory_order_relaxed)) {
      mine->emplace_back(i, CallOnce(stub, options, i, options.deadline));
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(options.concurrency);
  for (int t = 0; t < options.concurrency; ++t) threads.emplace_back(worker, &per_thread[t]);
  for (std::thread& thread : threads) thread.join();
  const Clock::duration elapsed = Clock::now() - start;
  *cpu_us = ProcessCpuUs() - cpu_start;
  *start_out = start;
  std::vector<std::pair<int64_t, RpcResult>> all;
  for (auto& mine : per_thread) {
    for (auto& entry : mine) all.push_back(std::move(entry));
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  results->clear();
  results->reserve(all.size());
  for (auto& entry : all) results->push_back(std::move(entry.second));
  return elapsed;
}

struct Report {
  int64_t rpcs = 0;
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;       // by code name
  std::map<std::string, int64_t> per_backend;  // successful RPCs only
  double qps = 0;
  double elapsed_s = 0;
  double cpu_us = 0;  // this process, during the measured RPCs
  double p50_us = 0, p99_us = 0, p999_us = 0;
  // Index k: the backends that served key "user-<k>".
  std::vector<std::set<std::string>> key_to_backends;
  // "CODE: message" in order of first occurrence, with counts.
  std::vector<std::pair<std::string, int64_t>> distinct_errors;
  // --timeline_ms: per bucket, RPCs finished OK per backend and failed,
  // and the p99 latency of the RPCs that finished in it.
  int64_t start_unix_ms = 0;
  int timeline_ms = 0;
  std::vector<std::pair<std::map<std::string, int64_t>, int64_t>> timeline;
  std::vector<double> timeline_p99_us;
};

// Nearest-rank percentile of sorted latencies, in microseconds.
double PercentileUs(const std::vector<Clock::duration>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  const size_t index = std::min(std::max<size_t>(rank, 1), sorted.size()) - 1;
  return std::chrono::duration<double, std::micro>(sorted[index]).count();
}

Report Summarise(const std::vector<RpcResult>& results, Clock::duration elapsed,
                 const Options& options) {
  Report report;
  report.rpcs = static_cast<int64_t>(results.size());
  report.elapsed_s = std::chrono::duration<double>(elapsed).count();
  if (report.elapsed_s > 0) report.qps = static_cast<double>(report.rpcs) / report.elapsed_s;
  report.key_to_backends.resize(options.hash_keys);

  std::vector<Clock::duration> latencies;
  latencies.reserve(results.size());
  std::map<std::string, size_t> error_index;  // into distinct_errors
  for (size_t i = 0; i < results.size(); ++i) {
    const RpcResult& r = results[i];
    latencies.push_back(r.latency);
    if (r.code == grpc::StatusCode::OK) {
      ++report.ok;
      ++report.per_backend[r.backend];
      if (options.hash_keys > 0) report.key_to_backends[i % options.hash_keys].insert(r.backend);
      continue;
    }
    const std::string code = StatusCodeName(r.code);
    ++report.errors[code];
    std::string error = absl::StrCat(code, ": ", r.error_message);
    auto [it, inserted] = error_index.emplace(std::move(error), report.distinct_errors.size());
    if (inserted) report.distinct_errors.emplace_back(it->first, 0);
    ++report.distinct_errors[it->second].second;
  }
  std::sort(latencies.begin(), latencies.end());
  report.p50_us = PercentileUs(latencies, 0.50);
  report.p99_us = PercentileUs(latencies, 0.99);
  report.p999_us = PercentileUs(latencies, 0.999);
  return report;
}

// A JSON string literal. Bytes >= 0x80 pass through: backend names arrive in
// protobuf strings, which are UTF-8.
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string JsonCounts(const std::map<std::string, int64_t>& counts) {
  std::string out = "{";
  for (const auto& [name, count] : counts) {
    if (out.size() > 1) out += ',';
    absl::StrAppend(&out, JsonString(name), ":", count);
  }
  return out + "}";
}

std::string ToJson(const Report& r) {
  std::string out = absl::StrCat("{\"rpcs\":", r.rpcs, ",\"ok\":", r.ok,
                                 ",\"errors\":", JsonCounts(r.errors),
                                 ",\"per_backend\":", JsonCounts(r.per_backend));
  absl::StrAppendFormat(&out, ",\"qps\":%.1f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f}",
                        r.qps, r.p50_us, r.p99_us, r.p999_us);
  absl::StrAppendFormat(&out, ",\"cpu_us\":%.0f", r.cpu_us);
  if (!r.timeline.empty()) {
    absl::StrAppend(&out, ",\"timeline\":{\"start_unix_ms\":", r.start_unix_ms,
                    ",\"bucket_ms\":", r.timeline_ms, ",\"buckets\":[");
    for (size_t b = 0; b < r.timeline.size(); ++b) {
      absl::StrAppend(&out, b > 0 ? "," : "", "{\"ok\":", JsonCounts(r.timeline[b].first),
                      ",\"failed\":", r.timeline[b].second);
      absl::StrAppendFormat(&out, ",\"p99_us\":%.1f}", r.timeline_p99_us[b]);
    }
    out += "]}";
  }
  if (!r.key_to_backends.empty()) {
    out += ",\"key_to_backends\":{";
    for (size_t k = 0; k < r.key_to_backends.size(); ++k) {
      if (k > 0) out += ',';
      absl::StrAppend(&out, JsonString(absl::StrCat("user-", k)), ":[");
      bool first = true;
      for (const std::string& backend : r.key_to_backends[k]) {
        if (!first) out += ',';
        first = false;
        out += JsonString(backend);
      }
      out += ']';
    }
    out += '}';
  }
  return out + "}";
}

double Percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

void PrintTable(const Report& r, const Options& options) {
  absl::PrintF("target       %s\n", options.target);
  absl::PrintF("rpcs         %d (ok %d, failed %d), concurrency %d\n", r.rpcs, r.ok,
               r.rpcs - r.ok, options.concurrency);
  absl::PrintF("throughput   %.1f qps (%.3f s)\n", r.qps, r.elapsed_s);
  absl::PrintF("client CPU   %.1f us per RPC\n",
               r.rpcs > 0 ? r.cpu_us / static_cast<double>(r.rpcs) : 0.0);
  absl::PrintF("latency      p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n\n", r.p50_us, r.p99_us,
               r.p999_us);

  int width = 7;
  for (const auto& [name, count] : r.per_backend) width = std::max(width, static_cast<int>(name.size()));
  for (const auto& [name, count] : r.errors) width = std::max(width, static_cast<int>(name.size()));
  absl::PrintF("%-*s %10s %8s\n", width, "backend", "rpcs", "share");
  for (const auto& [name, count] : r.per_backend) {
    absl::PrintF("%-*s %10d %7.1f%%\n", width, name, count, Percent(count, r.rpcs));
  }
  if (!r.errors.empty()) {
    absl::PrintF("\n%-*s %10s %8s\n", width, "error", "rpcs", "share");
    for (const auto& [name, count] : r.errors) {
      absl::PrintF("%-*s %10d %7.1f%%\n", width, name, count, Percent(count, r.rpcs));
    }
  }
  if (!r.key_to_backends.empty()) {
    size_t unserved = 0, single = 0;
    for (const auto& backends : r.key_to_backends) {
      if (backends.empty()) ++unserved;
      if (backends.size() == 1) ++single;
    }
    absl::PrintF("\nhash keys    %d: %d served by one backend, %d by several, %d never served\n",
                 r.key_to_backends.size(), single,
                 r.key_to_backends.size() - single - unserved, unserved);
  }
}

void PrintErrors(const Report& r) {
  const size_t shown = std::min(r.distinct_errors.size(), kMaxDistinctErrorsPrinted);
  for (size_t i = 0; i < shown; ++i) {
    Log(absl::StrCat("error (", r.distinct_errors[i].second, "x) ", r.distinct_errors[i].first));
  }
  if (r.distinct_errors.size() > shown) {
    Log(absl::StrCat("... and ", r.distinct_errors.size() - shown, " more distinct errors"));
  }
}

int Main() {
  Options options;
  if (std::optional<std::string> error = ParseOptions(&options)) {
    Log(*error);
    return 2;
  }
  // Before anything else touches gRPC: registration is only possible until
  // gRPC builds its configuration for the first channel.
  if (absl::Status status = lbkit::RegisterAll(); !status.ok()) {
    Log(absl::StrCat("lbkit::RegisterAll: ", status.ToString()));
    return 1;
  }

  // A malformed service config is reported here with its field path;
  // lbkit::CreateChannel would otherwise hand back a channel failing every
  // RPC with that message, and plain gRPC one failing them with no reason.
  if (!options.service_config.empty()) {
    if (absl::Status status = lbkit::ValidateServiceConfig(options.service_config);
        !status.ok()) {
      Log(absl::StrCat("--service_config: ", status.message()));
      return 2;
    }
  }
  grpc::ChannelArguments args;
  if (!options.service_config.empty()) args.SetServiceConfigJSON(options.service_config);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!absl::GetFlag(FLAGS_tls_ca).empty()) {
    grpc::SslCredentialsOptions tls;
    for (auto [flag, path, out] :
         {std::tuple{"--tls_ca", absl::GetFlag(FLAGS_tls_ca), &tls.pem_root_certs},
          {"--tls_cert", absl::GetFlag(FLAGS_tls_cert), &tls.pem_cert_chain},
          {"--tls_key", absl::GetFlag(FLAGS_tls_key), &tls.pem_private_key}}) {
      if (path.empty()) continue;
      std::ifstream in(path);
      if (!in) {
        Log(absl::StrCat(flag, ": cannot read ", path));
        return 2;
      }
      std::stringstream text;
      text << in.rdbuf();
      *out = text.str();
    }
    credentials = grpc::SslCredentials(tls);
    if (!absl::GetFlag(FLAGS_tls_server_name).empty()) {
      args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_tls_server_name));
    }
  }
  std::shared_ptr<grpc::Channel> channel = lbkit::CreateChannel(options.target, credentials, args);
  std::unique_ptr<Greeter::Stub> stub = Greeter::NewStub(channel);

  std::unique_ptr<lbkit::AdminServer> admin;
  if (const int port = absl::GetFlag(FLAGS_admin_port); port >= 0) {
    auto started = lbkit::AdminServer::Start(port);
    if (!started.ok()) {
      Log(started.status().ToString());
      return 1;
    }
    admin = *std::move(started);
    Log(absl::StrCat("admin server on http://127.0.0.1:", admin->port(),
                     "/metrics and /lbkit/state"));
  }

  WarmUp(*channel, *stub, options);
  std::vector<RpcResult> results;
  double cpu_us = 0;
  Clock::time_point start;
  std::chrono::system_clock::time_point start_unix;
  const Clock::duration elapsed =
      RunLoad(*stub, options, &results, &cpu_us, &start, &start_unix);
  Report report = Summarise(results, elapsed, options);
  report.cpu_us = cpu_us;
  if (options.timeline_ms > 0) {
    report.timeline_ms = options.timeline_ms;
    report.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               start_unix.time_since_epoch())
                               .count();
    std::vector<std::vector<Clock::duration>> latencies;
    for (const RpcResult& r : results) {
      const auto bucket = static_cast<size_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(r.done - start).count() /
          options.timeline_ms);
      if (report.timeline.size() <= bucket) {
        report.timeline.resize(bucket + 1);
        latencies.resize(bucket + 1);
      }
      latencies[bucket].push_back(r.latency);
      if (r.code == grpc::StatusCode::OK) {
        ++report.timeline[bucket].first[r.backend];
      } else {
        ++report.timeline[bucket].second;
      }
    }
    for (auto& bucket : latencies) {
      std::sort(bucket.begin(), bucket.end());
      report.timeline_p99_us.push_back(PercentileUs(bucket, 0.99));
    }
  }

  if (options.print_errors) PrintErrors(report);
  if (absl::GetFlag(FLAGS_print_state)) absl::FPrintF(stderr, "%s\n", lbkit::DumpState());
  if (absl::GetFlag(FLAGS_print_metrics)) absl::FPrintF(stderr, "%s", lbkit::PrometheusText());
  if (options.json) {
    absl::PrintF("%s\n", ToJson(report));
  } else {
    PrintTable(report, options);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace lbkit_examples

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Sends SayHello RPCs to greeter_server backends through one gRPC channel and "
      "reports how the load-balancing policy spread them.\n"
      "Example: greeter_client --target=ipv4:127.0.0.1:50051,127.0.0.1:50052 "
      "--service_config='{\"loadBalancingConfig\":[{\"lbkit_round_robin\":{}}]}' --json");
  if (std::vector<char*> rest = absl::ParseCommandLine(argc, argv); rest.size() > 1) {
    lbkit_examples::Log(absl::StrCat("unexpected argument \"", rest[1], "\"; see --help"));
    return 2;
  }
  return lbkit_examples::Main();
}
