// lbkit_soak_client: the client side of the chaos soak (tests/soak/soak.py).
//
// Registers lbkit, opens one channel to --target with --service_config and
// sends SayHello open loop at a fixed --rate for --duration_s seconds: the
// next RPC is started when it is due, whether or not earlier ones have
// finished (async API on one CompletionQueue, --cq_threads threads reaping
// completions). Every RPC carries a --deadline_ms deadline, so each one ends.
//
// Output, on stdout, one JSON object per line:
//   {"type":"start", "start_unix_ms", "rate", "duration_s", ...}
//   {"type":"second", "t", "phase": "send"|"drain", "sent", "shed", "ok",
//    "failed": {"CODE": n}, "p50_ms", "p99_ms", "max_ms", "hist": {bucket: n},
//    "backends": {"name": n}, "in_flight", "heap_kb", "rss_kb", "fds", "threads",
//    "endpoints", "ready", "ejected", "subchannels", "policies",
//    "channel_state"}
//   {"type":"summary", "sent", "ok", "failed", "shed", "outstanding", ...}
// A second's "sent" counts RPCs started in it; "ok", "failed" and the
// latencies count RPCs that ended in it (so failures carry the time they
// were seen). "hist" is a sparse latency histogram (bucket i holds latencies
// in [50 us x 1.1^i, 50 us x 1.1^(i+1))) that the driver merges per phase.
// "endpoints"/"ready" are summed over lbkit's leaf policies in
// lbkit::DumpState(), "ejected" is lbkit_outlier_ejection's count,
// "subchannels" the subchannels the channel holds (channelz), "policies" the
// lbkit policy instances alive; "heap_kb" the allocator's live bytes
// (mallinfo2, or ASan's allocator), "rss_kb" the resident set.
//
// After --duration_s it stops sending and waits for every RPC in flight to
// end (at most --deadline_ms plus --drain_s), then prints the summary. Every
// RPC is accounted for: sent == ok + sum(failed) + outstanding, and the exit
// status is non-zero if any is still outstanding.

#include <dirent.h>
#include <iterator>
#include <malloc.h>
#include <ratio>
#include <sys/resource.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "examples/greeter/status_codes.h"
#include "greeter.grpc.pb.h"
#include "lbkit/channel.h"
#include "lbkit/lbkit.h"
#include "lbkit/stats.h"
#include "src/core/lib/json/json.h"

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (libasan); GCC ships no header declaring it.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

ABSL_FLAG(std::string, target, "", "Channel target, e.g. lbkit-file:///tmp/e.json (required).");
ABSL_FLAG(std::string, service_config, "", "Service config JSON, or @FILE to read it from FILE.");
ABSL_FLAG(double, rate, 2000, "RPCs started per second (open loop).");
ABSL_FLAG(int32_t, duration_s, 60, "Seconds of sending.");
ABSL_FLAG(int32_t, deadline_ms, 1000, "Deadline of every RPC.");
ABSL_FLAG(int32_t, max_in_flight, 20000,
          "Bound on RPCs in flight; an RPC due while it is reached is not started and "
          "counts as 'shed'.");
ABSL_FLAG(int32_t, connect_timeout_s, 20, "Bound on waiting for the channel to be READY.");
ABSL_FLAG(int32_t, drain_s, 5, "Extra bound, beyond --deadline_ms, on the final drain.");
ABSL_FLAG(int32_t, cq_threads, 2, "Threads reaping completions.");
ABSL_FLAG(int32_t, initial_reconnect_backoff_ms, 100, "GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS.");
ABSL_FLAG(int32_t, max_reconnect_backoff_ms, 1000, "GRPC_ARG_MAX_RECONNECT_BACKOFF_MS.");
ABSL_FLAG(std::string, state_out, "", "If set, write lbkit::DumpState() here at the end.");

namespace lbkit_soak {
namespace {

using Clock = std::chrono::steady_clock;
using lbkit::examples::Greeter;
using lbkit::examples::HelloReply;
using lbkit::examples::HelloRequest;

void Log(const std::string& message) {
  absl::FPrintF(stderr, "lbkit_soak_client: %s\n", message);
}

std::string JsonString(const std::string& s) {
  return grpc_core::Json(s).Dump();
}

template <typename Map>
std::string JsonCounts(const Map& m) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : m) {
    parts.push_back(absl::StrCat(JsonString(absl::StrCat(key)), ":", value));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// Latency histogram bucket: [50 us x 1.1^i, 50 us x 1.1^(i+1)).
constexpr int kBuckets = 180;
int BucketOf(double ms) {
  const double us = ms * 1000.0;
  if (us < 50.0) return 0;
  return std::min(kBuckets - 1, static_cast<int>(std::log(us / 50.0) / std::log(1.1)));
}

double Percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0.0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// What happened in one second of the run.
struct Second {
  int64_t sent = 0, shed = 0, ok = 0;
  std::map<std::string, int64_t> failed;
  std::map<std::string, int64_t> backends;
  std::map<int, int64_t> hist;
  std::vector<float> latency_ms;
};

// ---- process and lbkit samples ------------------------------------------------

struct ProcessSample {
  int64_t rss_kb = 0, peak_rss_kb = 0, threads = 0, fds = 0, heap_kb = 0;
};

// Bytes the allocator has handed out and not had back: the leak signal. RSS
// also keeps the high-water mark of calls in flight (freed arena memory is not
// returned to the system), so it steps up when a frozen server piles up a
// second's worth of calls, and stays there.
int64_t LiveHeapKb() {
#if defined(__SANITIZE_ADDRESS__)
  return static_cast<int64_t>(__sanitizer_get_current_allocated_bytes() / 1024);
#else
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>((mi.uordblks + mi.hblkhd) / 1024);
#endif
}

ProcessSample SampleProcess() {
  ProcessSample s;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    long v = 0;
    if (sscanf(line.c_str(), "VmRSS: %ld", &v) == 1) s.rss_kb = v;
    if (sscanf(line.c_str(), "VmHWM: %ld", &v) == 1) s.peak_rss_kb = v;
    if (sscanf(line.c_str(), "Threads: %ld", &v) == 1) s.threads = v;
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (struct dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++s.fds;
    }
    closedir(dir);
    --s.fds;  // the directory's own descriptor
  }
  s.heap_kb = LiveHeapKb();
  return s;
}

const grpc_core::Json* Field(const grpc_core::Json& j, const std::string& key) {
  if (j.type() != grpc_core::Json::Type::OBJECT) return nullptr;
  auto it = j.object_value().find(key);
  return it == j.object_value().end() ? nullptr : &it->second;
}

std::string StringField(const grpc_core::Json& j, const std::string& key) {
  const grpc_core::Json* f = Field(j, key);
  return f != nullptr && f->type() == grpc_core::Json::Type::STRING ? f->string_value() : "";
}

struct LbSample {
  int64_t endpoints = -1, ready = -1, ejected = -1, policies = -1, subchannels = -1;
  std::string channel_state;
};

bool IsLeaf(const std::string& policy) {
  return policy == "lbkit_round_robin" || policy == "lbkit_least_request" ||
         policy == "lbkit_ring_hash" || policy == "lbkit_maglev";
}

LbSample SampleLb() {
  LbSample s;
  absl::StatusOr<grpc_core::Json> state = grpc_core::Json::Parse(lbkit::DumpState());
  if (state.ok()) {
    const grpc_core::Json* policies = Field(*state, "policies");
    if (policies != nullptr && policies->type() == grpc_core::Json::Type::ARRAY) {
      s.policies = policies->array_value().size();
      s.endpoints = s.ready = s.ejected = 0;
      for (const grpc_core::Json& p : policies->array_value()) {
        const std::string name = StringField(p, "policy");
        const grpc_core::Json* endpoints = Field(p, "endpoints");
        if (endpoints == nullptr || endpoints->type() != grpc_core::Json::Type::ARRAY) continue;
        for (const grpc_core::Json& e : endpoints->array_value()) {
          if (IsLeaf(name)) {
            ++s.endpoints;
            if (StringField(e, "state") == "READY") ++s.ready;
          } else if (name == "lbkit_outlier_ejection") {
            const grpc_core::Json* ejected = Field(e, "ejected");
            if (ejected != nullptr && ejected->type() == grpc_core::Json::Type::OBJECT) {
              ++s.ejected;
            }
          }
        }
      }
    }
  }
  // Channelz: the top channel lists the subchannels its LB policy holds.
  if (char* text = grpc_channelz_get_top_channels(0)) {
    absl::StatusOr<grpc_core::Json> top = grpc_core::Json::Parse(text);
    gpr_free(text);
    if (top.ok()) {
      const grpc_core::Json* channels = Field(*top, "channel");
      if (channels != nullptr && channels->type() == grpc_core::Json::Type::ARRAY) {
        s.subchannels = 0;
        for (const grpc_core::Json& c : channels->array_value()) {
          const grpc_core::Json* refs = Field(c, "subchannelRef");
          if (refs != nullptr && refs->type() == grpc_core::Json::Type::ARRAY) {
            s.subchannels += refs->array_value().size();
          }
          if (const grpc_core::Json* data = Field(c, "data")) {
            if (const grpc_core::Json* st = Field(*data, "state")) {
              s.channel_state = StringField(*st, "state");
            }
          }
        }
      }
    }
  }
  return s;
}

// ---- the load ----------------------------------------------------------------------

struct Call {
  grpc::ClientContext context;
  HelloRequest request;
  HelloReply reply;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<HelloReply>> reader;
  Clock::time_point start;
};

class Soak {
 public:
  Soak(std::shared_ptr<grpc::Channel> channel, double rate, int duration_s, int deadline_ms,
       int max_in_flight)
      : channel_(std::move(channel)),
        stub_(Greeter::NewStub(channel_)),
        rate_(rate),
        duration_s_(duration_s),
        deadline_ms_(deadline_ms),
        max_in_flight_(max_in_flight) {}

  int Run(int cq_threads, int drain_s) {
    start_ = Clock::now();
    const int64_t start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
    absl::PrintF(
        "{\"type\":\"start\",\"start_unix_ms\":%d,\"rate\":%g,\"duration_s\":%d,"
        "\"deadline_ms\":%d,\"pid\":%d}\n",
        start_unix_ms, rate_, duration_s_, deadline_ms_, getpid());
    fflush(stdout);

    std::vector<std::thread> reapers;
    for (int i = 0; i < cq_threads; ++i) reapers.emplace_back([this] { Reap(); });
    std::thread sender([this] { Send(); });

    // One line per second while sending, then while draining (bounded).
    const auto drain_until =
        start_ + std::chrono::seconds(duration_s_) + std::chrono::milliseconds(deadline_ms_) +
        std::chrono::seconds(drain_s);
    for (int64_t s = 0;; ++s) {
      std::this_thread::sleep_until(start_ + std::chrono::seconds(s + 1));
      const bool sending = s + 1 < duration_s_ || !sender_done_.load();
      const bool last = !sending && (in_flight_.load() == 0 || Clock::now() >= drain_until);
      PrintSecond(s, s < duration_s_ ? "send" : "drain", last);
      if (last) break;
    }
    sender.join();
    const int64_t outstanding = in_flight_.load();
    PrintSummary(outstanding);
    if (outstanding != 0) {
      // The calls still own memory the CompletionQueue will hand back; leaving
      // without waiting is the bounded choice. Reported, and a failed run.
      Log(absl::StrCat(outstanding, " RPCs still outstanding after the drain"));
      fflush(stdout);
      _exit(1);
    }
    cq_.Shutdown();
    for (auto& t : reapers) t.join();
    return 0;
  }

 private:
  void Send() {
    const auto end = start_ + std::chrono::seconds(duration_s_);
    int64_t started = 0;  // started + shed
    for (;;) {
      const auto now = Clock::now();
      if (now >= end) break;
      const double elapsed = std::chrono::duration<double>(now - start_).count();
      const int64_t due = static_cast<int64_t>(elapsed * rate_);
      for (; started < due; ++started) {
        if (in_flight_.load() >= max_in_flight_) {
          Count([](Second& s) { ++s.shed; });
          continue;
        }
        StartCall();
      }
      const auto next = start_ + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>((started + 1) / rate_));
      std::this_thread::sleep_until(std::min(next, end));
    }
    sender_done_ = true;
  }

  void StartCall() {
    auto* call = new Call;
    call->request.set_name("soak");
    call->start = Clock::now();
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(deadline_ms_));
    in_flight_.fetch_add(1);
    Count([](Second& s) { ++s.sent; });
    call->reader = stub_->AsyncSayHello(&call->context, call->request, &cq_);
    call->reader->Finish(&call->reply, &call->status, call);
  }

  void Reap() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - call->start).count();
      const bool success = ok && call->status.ok();
      const std::string code =
          ok ? lbkit_examples::StatusCodeName(call->status.error_code()) : "CQ_NOT_OK";
      const std::string backend = call->reply.backend();
      const std::string message = call->status.error_message();
      Count([&](Second& s) {
        if (success) {
          ++s.ok;
          ++s.backends[backend];
        } else {
          ++s.failed[code];
          std::string key = absl::StrCat(code, ": ", message.substr(0, 160));
          if (errors_.size() < 64 || errors_.count(key) != 0) ++errors_[key];
        }
        s.latency_ms.push_back(static_cast<float>(ms));
        ++s.hist[BucketOf(ms)];
      });
      in_flight_.fetch_sub(1);
    }
  }

  // Adds to the current second, or to the first one not yet printed.
  template <typename F>
  void Count(F f) {
    const int64_t now_index =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_).count();
    std::lock_guard<std::mutex> lock(mu_);
    f(seconds_[std::max(now_index, printed_ + 1)]);
  }

  void PrintSecond(int64_t s, const char* phase, bool last) {
    Second sec;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The last line takes everything left, so the totals add up exactly.
      auto stop = last ? seconds_.end() : seconds_.upper_bound(s);
      for (auto it = seconds_.begin(); it != stop; it = seconds_.erase(it)) {
        Merge(&sec, std::move(it->second));
      }
      printed_ = last ? INT64_MAX / 2 : s;
    }
    // Counts only: keeping every latency would grow this process's RSS,
    // which the soak watches for leaks. The summary's percentiles come from
    // the histogram.
    MergeCounts(&total_, sec);
    total_max_ms_ = std::max<double>(total_max_ms_, MaxOf(sec.latency_ms));
    const ProcessSample p = SampleProcess();
    const LbSample lb = SampleLb();
    const double p50 = Percentile(sec.latency_ms, 0.50);
    const double p99 = Percentile(sec.latency_ms, 0.99);
    const double max = MaxOf(sec.latency_ms);
    absl::PrintF(
        "{\"type\":\"second\",\"t\":%d,\"phase\":\"%s\",\"sent\":%d,\"shed\":%d,\"ok\":%d,"
        "\"failed\":%s,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"hist\":%s,"
        "\"backends\":%s,\"in_flight\":%d,\"heap_kb\":%d,\"rss_kb\":%d,\"peak_rss_kb\":%d,\"fds\":%d,"
        "\"threads\":%d,\"endpoints\":%d,\"ready\":%d,\"ejected\":%d,\"subchannels\":%d,"
        "\"policies\":%d,\"channel_state\":%s}\n",
        s, phase, sec.sent, sec.shed, sec.ok, JsonCounts(sec.failed), p50, p99, max,
        JsonCounts(sec.hist), JsonCounts(sec.backends), in_flight_.load(), p.heap_kb, p.rss_kb,
        p.peak_rss_kb, p.fds, p.threads, lb.endpoints, lb.ready, lb.ejected, lb.subchannels,
        lb.policies, JsonString(lb.channel_state));
    fflush(stdout);
  }

  static double MaxOf(const std::vector<float>& v) {
    return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
  }

  static void MergeCounts(Second* into, const Second& from) {
    into->sent += from.sent;
    into->shed += from.shed;
    into->ok += from.ok;
    for (const auto& [k, v] : from.failed) into->failed[k] += v;
    for (const auto& [k, v] : from.backends) into->backends[k] += v;
    for (const auto& [k, v] : from.hist) into->hist[k] += v;
  }

  static void Merge(Second* into, Second from) {
    MergeCounts(into, from);
    into->latency_ms.insert(into->latency_ms.end(), from.latency_ms.begin(),
                            from.latency_ms.end());
  }

  // The upper bound of the bucket holding the p-th latency.
  static double HistPercentile(const std::map<int, int64_t>& hist, double p) {
    int64_t n = 0;
    for (const auto& [k, v] : hist) n += v;
    if (n == 0) return 0.0;
    const int64_t rank = static_cast<int64_t>(std::ceil(p * n));
    int64_t seen = 0;
    for (const auto& [k, v] : hist) {
      seen += v;
      if (seen >= rank) return 0.05 * std::pow(1.1, k + 1);
    }
    return 0.05 * std::pow(1.1, hist.rbegin()->first + 1);
  }

  void PrintSummary(int64_t outstanding) {
    int64_t failed = 0;
    for (const auto& [k, v] : total_.failed) failed += v;
    const double p50 = HistPercentile(total_.hist, 0.50),
                 p99 = HistPercentile(total_.hist, 0.99),
                 p999 = HistPercentile(total_.hist, 0.999), max = total_max_ms_;
    std::vector<std::string> errors;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [k, v] : errors_) {
        errors.push_back(absl::StrCat("{\"error\":", JsonString(k), ",\"count\":", v, "}"));
      }
    }
    const ProcessSample p = SampleProcess();
    const LbSample lb = SampleLb();
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    const double cpu_s = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    absl::PrintF(
        "{\"type\":\"summary\",\"cpu_s\":%.3f,\"sent\":%d,\"ok\":%d,\"failed_total\":%d,\"failed\":%s,"
        "\"shed\":%d,\"outstanding\":%d,\"accounted\":%s,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"peak_rss_kb\":%d,\"rss_kb\":%d,\"fds\":%d,"
        "\"endpoints\":%d,\"ready\":%d,\"subchannels\":%d,\"policies\":%d,\"errors\":[%s]}\n",
        cpu_s, total_.sent, total_.ok, failed, JsonCounts(total_.failed), total_.shed, outstanding,
        total_.sent == total_.ok + failed + outstanding ? "true" : "false", p50, p99, p999, max,
        p.peak_rss_kb, p.rss_kb, p.fds, lb.endpoints, lb.ready, lb.subchannels, lb.policies,
        absl::StrJoin(errors, ","));
    fflush(stdout);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Greeter::Stub> stub_;
  grpc::CompletionQueue cq_;
  const double rate_;
  const int duration_s_, deadline_ms_, max_in_flight_;
  Clock::time_point start_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> sender_done_{false};

  std::mutex mu_;
  std::map<int64_t, Second> seconds_;  // not yet printed
  int64_t printed_ = -1;
  std::map<std::string, int64_t> errors_;  // "CODE: message" -> count, at most 64 kinds

  Second total_;  // printed seconds (counts only), reporter thread only
  double total_max_ms_ = 0.0;
};

int Main() {
  std::string config = absl::GetFlag(FLAGS_service_config);
  if (!config.empty() && config[0] == '@') {
    std::ifstream in(config.substr(1));
    if (!in) {
      Log(absl::StrCat("cannot read ", config.substr(1)));
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    config = ss.str();
  }
  const std::string target = absl::GetFlag(FLAGS_target);
  const double rate = absl::GetFlag(FLAGS_rate);
  const int duration_s = absl::GetFlag(FLAGS_duration_s);
  const int deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  if (target.empty() || !(rate > 0 && rate <= 100000) || duration_s < 1 ||
      duration_s > 24 * 3600 || deadline_ms < 1 || absl::GetFlag(FLAGS_cq_threads) < 1) {
    Log("need --target, --rate in (0, 100000], --duration_s >= 1, --deadline_ms >= 1, "
        "--cq_threads >= 1");
    return 2;
  }
  if (absl::Status s = lbkit::RegisterAll(); !s.ok()) {
    Log(absl::StrCat("lbkit::RegisterAll: ", s.ToString()));
    return 1;
  }
  if (!config.empty()) {
    if (absl::Status s = lbkit::ValidateServiceConfig(config); !s.ok()) {
      Log(absl::StrCat("--service_config: ", s.message()));
      return 2;
    }
  }
  grpc::ChannelArguments args;
  if (!config.empty()) args.SetServiceConfigJSON(config);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              absl::GetFlag(FLAGS_initial_reconnect_backoff_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, absl::GetFlag(FLAGS_max_reconnect_backoff_ms));
  int rc = 0;
  {
    std::shared_ptr<grpc::Channel> channel =
        lbkit::CreateChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(absl::GetFlag(FLAGS_connect_timeout_s)))) {
      Log(absl::StrCat("channel to ", target, " not READY within --connect_timeout_s"));
      return 1;
    }
    Soak soak(channel, rate, duration_s, deadline_ms, absl::GetFlag(FLAGS_max_in_flight));
    rc = soak.Run(absl::GetFlag(FLAGS_cq_threads), absl::GetFlag(FLAGS_drain_s));
    if (const std::string path = absl::GetFlag(FLAGS_state_out); !path.empty()) {
      std::ofstream(path) << lbkit::DumpState() << "\n";
    }
  }
  return rc;
}

}  // namespace
}  // namespace lbkit_soak

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Fixed-rate SayHello load through lbkit for the chaos soak; one JSON line per second.");
  if (absl::ParseCommandLine(argc, argv).size() > 1) {
    lbkit_soak::Log("unexpected argument; see --help");
    return 2;
  }
  return lbkit_soak::Main();
}
