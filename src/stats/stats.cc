#include "stats/stats.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace lbkit::stats {

namespace {

//
// Registry
//

struct Registry {
  std::mutex mu;
  uint64_t next_id = 1;
  // Weak: a policy's stats leave the registry when the policy drops them.
  std::vector<std::weak_ptr<PolicyStats>> policies;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

//
// Output helpers
//



// Prometheus label values: backslash, double quote and newline escaped.
std::string PromValue(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// gRPC's names of the status codes, as metrics and the dump show them.
const char* CodeName(int code) {
  static constexpr const char* kNames[kNumStatusCodes] = {
      "OK",          "CANCELLED",          "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < kNumStatusCodes ? kNames[code] : "UNKNOWN";
}

}  // namespace

//
// Pick cells and the graveyard
//

namespace internal {

// Every thread's table, the table exited threads folded into, and the
// slots free for reuse. Its mutex also guards the graveyard.
struct CellRegistry {
  std::mutex mu;
  std::vector<ThreadCells*> threads;
  ThreadCells exited;
  std::vector<uint32_t> free_slots;
  uint32_t next_slot = 0;

  CellRegistry() { exited.shared = true; }
};

CellRegistry& Cells() {
  static CellRegistry* registry = new CellRegistry();
  return *registry;
}

struct PickSum {
  uint64_t picks = 0;
  uint64_t abandoned = 0;
};

// Adds every table's cell for `slot`; `mu` held. Every abandoned count is
// read before any pick count (see EndpointStats::ReadCallCountsLocked).
PickSum SumCells(CellRegistry& r, uint32_t slot) {
  std::vector<const PickCell*> cells;
  auto add = [&](const ThreadCells* t) {
    const ThreadCells::Chunk* chunk =
        t->chunks[slot / ThreadCells::kChunkSlots].load(std::memory_order_acquire);
    if (chunk != nullptr) cells.push_back(&(*chunk)[slot % ThreadCells::kChunkSlots]);
  };
  for (const ThreadCells* t : r.threads) add(t);
  add(&r.exited);
  PickSum sum;
  for (const PickCell* c : cells) sum.abandoned += c->abandoned.load(std::memory_order_acquire);
  for (const PickCell* c : cells) sum.picks += c->picks.load(std::memory_order_acquire);
  return sum;
}

namespace {

// Folds a thread's counts into the shared table when it exits, so that
// they outlive it; later counts on this thread go to the shared table.
struct ThreadCellsOwner {
  ThreadCells* cells = nullptr;
  ~ThreadCellsOwner() {
    if (cells == nullptr) return;
    CellRegistry& r = Cells();
    std::lock_guard<std::mutex> lock(r.mu);
    for (size_t k = 0; k < ThreadCells::kMaxChunks; ++k) {
      ThreadCells::Chunk* chunk = cells->chunks[k].load(std::memory_order_relaxed);
      if (chunk == nullptr) continue;
      for (size_t i = 0; i < ThreadCells::kChunkSlots; ++i) {
        PickCell& to = CellSlow(&r.exited, static_cast<uint32_t>(k * ThreadCells::kChunkSlots + i));
        to.picks.fetch_add((*chunk)[i].picks.load(std::memory_order_relaxed));
        to.abandoned.fetch_add((*chunk)[i].abandoned.load(std::memory_order_relaxed));
      }
      delete chunk;
    }
    r.threads.erase(std::find(r.threads.begin(), r.threads.end(), cells));
    delete cells;
    tls_cells = &r.exited;
  }
};
thread_local ThreadCellsOwner tls_cells_owner;

}  // namespace

ThreadCells* RegisterThreadCells() {
  CellRegistry& r = Cells();
  auto* cells = new ThreadCells();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.threads.push_back(cells);
  }
  tls_cells_owner.cells = cells;
  tls_cells = cells;
  return cells;
}

// A new chunk is published with release, so a reader either sees no chunk
// or a zeroed one.
PickCell& CellSlow(ThreadCells* cells, uint32_t slot) {
  std::atomic<ThreadCells::Chunk*>& entry = cells->chunks[slot / ThreadCells::kChunkSlots];
  ThreadCells::Chunk* chunk = entry.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    // The exited table is reached from any thread at once (threads past
    // their exit, a folding thread): publish with a CAS.
    auto* fresh = new ThreadCells::Chunk();
    if (entry.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      delete fresh;
    }
  }
  return (*chunk)[slot % ThreadCells::kChunkSlots];
}

}  // namespace internal

struct Graveyard {
  // `mu` of the cell registry guards it.
  static std::vector<EndpointStats*>& Dead() {
    static auto* dead = new std::vector<EndpointStats*>();
    return *dead;
  }

  // Frees what no call counts on any more; its slot is zeroed in every
  // table and reused. `mu` held.
  static void Sweep(internal::CellRegistry& r) {
    std::vector<EndpointStats*>& dead = Dead();
    for (size_t i = 0; i < dead.size();) {
      EndpointStats* e = dead[i];
      const EndpointStats::CallCounts counts = e->ReadCallCountsLocked(r);
      if (counts.in_flight != 0) {
        ++i;
        continue;
      }
      if (e->slot_ == internal::ThreadCells::kNoSlot) {
        delete e;
        dead[i] = dead.back();
        dead.pop_back();
        continue;
      }
      auto zero = [&](internal::ThreadCells* t) {
        internal::ThreadCells::Chunk* chunk =
            t->chunks[e->slot_ / internal::ThreadCells::kChunkSlots].load(std::memory_order_acquire);
        if (chunk == nullptr) return;
        internal::PickCell& c = (*chunk)[e->slot_ % internal::ThreadCells::kChunkSlots];
        c.picks.store(0, std::memory_order_relaxed);
        c.abandoned.store(0, std::memory_order_relaxed);
      };
      zero(&r.exited);
      for (internal::ThreadCells* t : r.threads) zero(t);
      r.free_slots.push_back(e->slot_);
      delete e;
      dead[i] = dead.back();
      dead.pop_back();
    }
  }

  static void Bury(EndpointStats* e) {
    internal::CellRegistry& r = internal::Cells();
    std::lock_guard<std::mutex> lock(r.mu);
    Dead().push_back(e);
    Sweep(r);
  }
};

std::shared_ptr<EndpointStats> EndpointStats::Create(std::string address, std::string locality,
                                                     std::map<std::string, std::string> labels,
                                                     uint32_t weight) {
  internal::CellRegistry& r = internal::Cells();
  uint32_t slot;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    Graveyard::Sweep(r);
    if (!r.free_slots.empty()) {
      slot = r.free_slots.back();
      r.free_slots.pop_back();
    } else if (r.next_slot < internal::ThreadCells::kNoSlot) {
      slot = r.next_slot++;
    } else {
      // Past 262,144 alive at once, an endpoint's stats count in their own
      // cell, with atomic adds, instead of per thread.
      slot = internal::ThreadCells::kNoSlot;
    }
  }
  return std::shared_ptr<EndpointStats>(
      new EndpointStats(Key(), slot, std::move(address), std::move(locality), std::move(labels),
                        weight),
      [](EndpointStats* e) { Graveyard::Bury(e); });
}

// The finished and abandoned counts are read before the picks: every call
// counted in them was picked before, so the picks read after are at least
// their sum and in flight is never negative.
EndpointStats::CallCounts EndpointStats::ReadCallCountsLocked(internal::CellRegistry& r) const {
  CallCounts counts;
  uint64_t done = 0;
  for (int c = 0; c < kNumStatusCodes; ++c) {
    counts.finished[c] = finished_[c].load(std::memory_order_acquire);
    done += counts.finished[c];
  }
  internal::PickSum sum;
  if (slot_ == internal::ThreadCells::kNoSlot) {
    sum.abandoned = overflow_.abandoned.load(std::memory_order_acquire);
    sum.picks = overflow_.picks.load(std::memory_order_acquire);
  } else {
    sum = internal::SumCells(r, slot_);
  }
  counts.picks = sum.picks;
  counts.in_flight = static_cast<int64_t>(sum.picks - sum.abandoned - done);
  return counts;
}

EndpointStats::CallCounts EndpointStats::ReadCallCounts() const {
  internal::CellRegistry& r = internal::Cells();
  std::lock_guard<std::mutex> lock(r.mu);
  return ReadCallCountsLocked(r);
}

uint64_t EndpointStats::picks() const { return ReadCallCounts().picks; }
int64_t EndpointStats::in_flight() const { return ReadCallCounts().in_flight; }

void SweepReleasedEndpointStats() {
  internal::CellRegistry& r = internal::Cells();
  std::lock_guard<std::mutex> lock(r.mu);
  Graveyard::Sweep(r);
}

size_t ReleasedEndpointStatsForTesting() {
  internal::CellRegistry& r = internal::Cells();
  std::lock_guard<std::mutex> lock(r.mu);
  return Graveyard::Dead().size();
}

// The status code is counted last, with release: it ends the call's use
// of the object (the graveyard frees it once every pick is matched).
void EndpointStats::CallFinished(int code, int64_t duration_ns) {
  const double seconds = static_cast<double>(duration_ns) * 1e-9;
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds) -
      kLatencyBounds.begin());
  latency_[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, duration_ns)),
                            std::memory_order_relaxed);
  if (code < 0 || code >= kNumStatusCodes) code = 2;  // UNKNOWN
  finished_[code].fetch_add(1, std::memory_order_release);
}

std::shared_ptr<PolicyStats> PolicyStats::Register(std::string policy, bool counts_calls) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::shared_ptr<PolicyStats> stats(new PolicyStats(std::move(policy), r.next_id++, counts_calls));
  // Drop the entries of policies that are gone while here.
  r.policies.erase(std::remove_if(r.policies.begin(), r.policies.end(),
                                  [](const auto& w) { return w.expired(); }),
                   r.policies.end());
  r.policies.push_back(stats);
  return stats;
}

PolicyStats::~PolicyStats() = default;

void PolicyStats::SetTarget(std::string target) {
  std::lock_guard<std::mutex> lock(mu_);
  target_ = std::move(target);
}
void PolicyStats::SetConfigJson(std::string json) {
  std::lock_guard<std::mutex> lock(mu_);
  config_json_ = std::move(json);
}
void PolicyStats::SetEndpoints(std::vector<std::shared_ptr<EndpointStats>> endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
}
void PolicyStats::SetDetailJson(std::string json) {
  std::lock_guard<std::mutex> lock(mu_);
  detail_json_ = std::move(json);
}
void PolicyStats::CountResolverError(std::string error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++resolver_errors_;
  last_resolver_error_ = std::move(error);
}

PolicyStats::Snapshot PolicyStats::Read() const {
  Snapshot s;
  s.id = id;
  s.counts_calls = counts_calls;
  s.policy = policy_;
  s.picker_updates = picker_updates_.load(std::memory_order_relaxed);
  s.drops = drops_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  s.target = target_;
  s.config_json = config_json_;
  s.detail_json = detail_json_;
  s.last_resolver_error = last_resolver_error_;
  s.resolver_errors = resolver_errors_;
  s.endpoints = endpoints_;
  return s;
}

std::vector<PolicyStats::Snapshot> PolicyStats::ReadAll() {
  std::vector<std::shared_ptr<PolicyStats>> live;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& w : r.policies) {
      if (auto p = w.lock()) live.push_back(std::move(p));
    }
  }
  std::vector<Snapshot> out;
  out.reserve(live.size());
  for (const auto& p : live) out.push_back(p->Read());
  return out;
}

namespace {

// LBKIT_STATS, read once.
bool EnabledByEnvironment() {
  static const bool on = [] {
    const char* env = std::getenv("LBKIT_STATS");
    if (env == nullptr) return true;
    const std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(env));
    if (value == "0" || value == "off" || value == "false" || value == "no") return false;
    if (!(value.empty() || value == "1" || value == "on" || value == "true" || value == "yes")) {
      // A typo must not silently leave counting on (or off).
      gpr_log(GPR_ERROR, "lbkit: LBKIT_STATS=\"%s\" is not 0/off/false/no or 1/on/true/yes; "
              "counting stays on",
              env);
    }
    return true;
  }();
  return on;
}

}  // namespace

namespace internal {
bool ReadEnabled() {
  int expected = -1;
  enabled_state.compare_exchange_strong(expected, EnabledByEnvironment() ? 1 : 0,
                                        std::memory_order_relaxed);
  return enabled_state.load(std::memory_order_relaxed) != 0;
}
}  // namespace internal

void SetEnabled(bool enabled) {
  EnabledByEnvironment();  // still reported if malformed
  internal::enabled_state.store(enabled ? 1 : 0, std::memory_order_relaxed);
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;  // UTF-8 passes through
        }
    }
  }
  return out + "\"";
}

const char* ConnectivityName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE: return "IDLE";
    case GRPC_CHANNEL_CONNECTING: return "CONNECTING";
    case GRPC_CHANNEL_READY: return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "UNKNOWN";
}

const char* HealthName(Health health) {
  switch (health) {
    case Health::kNotChecked: return "NOT_CHECKED";
    case Health::kUnknown: return "UNKNOWN";
    case Health::kHealthy: return "HEALTHY";
    case Health::kUnhealthy: return "UNHEALTHY";
  }
  return "UNKNOWN";
}

namespace {

struct Section {
  std::function<std::string()> json, prometheus;
};
absl::Mutex g_sections_mu;
std::map<std::string, Section>& Sections() {
  static auto* sections = new std::map<std::string, Section>();
  return *sections;
}

}  // namespace

void RegisterSection(std::string name, std::function<std::string()> json,
                     std::function<std::string()> prometheus) {
  absl::MutexLock lock(&g_sections_mu);
  Sections()[std::move(name)] = Section{std::move(json), std::move(prometheus)};
}

std::string DumpJson() {
  SweepReleasedEndpointStats();
  std::vector<std::string> policies;
  for (const PolicyStats::Snapshot& p : PolicyStats::ReadAll()) {
    std::vector<std::string> endpoints;
    for (const auto& e : p.endpoints) {
      std::vector<std::string> labels, codes, buckets;
      for (const auto& [k, v] : e->labels()) labels.push_back(JsonString(k) + ":" + JsonString(v));
      // One read, so that picks >= finished + in flight in what is shown.
      const EndpointStats::CallCounts counts = e->ReadCallCounts();
      uint64_t finished = 0;
      for (int c = 0; c < kNumStatusCodes; ++c) {
        if (counts.finished[c] > 0) {
          codes.push_back(absl::StrCat(JsonString(CodeName(c)), ":", counts.finished[c]));
        }
        finished += counts.finished[c];
      }
      for (size_t b = 0; b <= kLatencyBounds.size(); ++b) buckets.push_back(absl::StrCat(e->latency_bucket(b)));
      std::string ejected = "null";
      if (e->ejected()) {
        ejected = absl::StrCat("{\"until_unix_ms\":", e->ejected_until_unix_ms(),
                               ",\"times\":", e->times_ejected(), "}");
      }
      endpoints.push_back(absl::StrCat(
          "{\"address\":", JsonString(e->address()), ",\"locality\":", JsonString(e->locality()),
          ",\"labels\":{", absl::StrJoin(labels, ","), "},\"weight\":", e->weight(),
          ",\"state\":", JsonString(ConnectivityName(e->connectivity())),
          ",\"health\":", JsonString(HealthName(e->health())), ",\"ejected\":", ejected,
          ",\"picks\":", counts.picks, ",\"in_flight\":", counts.in_flight,
          ",\"finished\":", finished, ",\"latency_estimate_ms\":",
          e->latency_estimate_ns() < 0 ? std::string("null")
                                       : absl::StrFormat("%.3f", e->latency_estimate_ns() * 1e-6),
          ",\"by_code\":{", absl::StrJoin(codes, ","),
          "},\"latency\":{\"bounds_seconds\":[", absl::StrJoin(kLatencyBounds, ","),
          "],\"counts\":[", absl::StrJoin(buckets, ","), "],\"sum_seconds\":",
          absl::StrFormat("%.6f", e->latency_sum_ns() * 1e-9), "}}"));
    }
    policies.push_back(absl::StrCat(
        "{\"id\":", p.id, ",\"policy\":", JsonString(p.policy), ",\"target\":",
        JsonString(p.target), ",\"config\":", p.config_json.empty() ? "null" : p.config_json,
        ",\"picker_updates\":", p.picker_updates, ",\"drops\":", p.drops,
        ",\"resolver_errors\":", p.resolver_errors,
        ",\"last_resolver_error\":",
        p.last_resolver_error.empty() ? "null" : JsonString(p.last_resolver_error),
        ",\"detail\":", p.detail_json, ",\"endpoints\":[", absl::StrJoin(endpoints, ","), "]}"));
  }
  std::string sections;
  {
    absl::MutexLock lock(&g_sections_mu);
    for (const auto& [name, section] : Sections()) {
      absl::StrAppend(&sections, ",", JsonString(name), ":", section.json());
    }
  }
  return absl::StrCat("{\"policies\":[", absl::StrJoin(policies, ","), "]", sections, "}");
}

std::string Prometheus() {
  SweepReleasedEndpointStats();
  const std::vector<PolicyStats::Snapshot> all = PolicyStats::ReadAll();
  std::string out;
  // Call counts come from leaf policies; ejections from the wrapper that
  // ejects (a parent's view of the same endpoints).
  auto family = [&](const char* name, const char* type, const char* help,
                    const std::function<void(const PolicyStats::Snapshot&, const EndpointStats&,
                                             const std::string& labels)>& emit,
                    bool from_leaves = true) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& p : all) {
      if (p.counts_calls != from_leaves) continue;
      for (const auto& e : p.endpoints) {
        const std::string labels = absl::StrCat(
            "target=\"", PromValue(p.target), "\",policy=\"", PromValue(p.policy),
            "\",endpoint=\"", PromValue(e->address()), "\",locality=\"",
            PromValue(e->locality()), "\"");
        emit(p, *e, labels);
      }
    }
  };
  family("lbkit_endpoint_picks_total", "counter", "Calls a picker sent to the endpoint.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           absl::StrAppend(&out, "lbkit_endpoint_picks_total{", l, "} ", e.picks(), "\n");
         });
  family("lbkit_endpoint_requests_total", "counter",
         "Calls to the endpoint that finished, by gRPC status code.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           for (int c = 0; c < kNumStatusCodes; ++c) {
             if (e.finished(c) == 0 && c != 0) continue;
             absl::StrAppend(&out, "lbkit_endpoint_requests_total{", l, ",code=\"", CodeName(c),
                             "\"} ", e.finished(c), "\n");
           }
         });
  family("lbkit_endpoint_in_flight", "gauge", "Calls picked for the endpoint and not yet finished.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           absl::StrAppend(&out, "lbkit_endpoint_in_flight{", l, "} ", e.in_flight(), "\n");
         });
  family("lbkit_endpoint_ready", "gauge",
         "1 when the endpoint can take calls (connected and, if checked, healthy).",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           absl::StrAppend(&out, "lbkit_endpoint_ready{", l, "} ",
                           e.connectivity() == GRPC_CHANNEL_READY ? 1 : 0, "\n");
         });
  family("lbkit_endpoint_healthy", "gauge",
         "1 healthy, 0 unhealthy or not yet checked; absent without health checks.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           if (e.health() == Health::kNotChecked) return;
           absl::StrAppend(&out, "lbkit_endpoint_healthy{", l, "} ",
                           e.health() == Health::kHealthy ? 1 : 0, "\n");
         });
  family("lbkit_endpoint_ejected", "gauge", "1 while outlier ejection keeps the endpoint out.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           absl::StrAppend(&out, "lbkit_endpoint_ejected{", l, "} ", e.ejected() ? 1 : 0, "\n");
         },
         /*from_leaves=*/false);
  family("lbkit_request_duration_seconds", "histogram",
         "Duration of calls to the endpoint, from start to finish.",
         [&](const auto&, const EndpointStats& e, const std::string& l) {
           uint64_t cumulative = 0;
           for (size_t b = 0; b < kLatencyBounds.size(); ++b) {
             cumulative += e.latency_bucket(b);
             absl::StrAppend(&out, "lbkit_request_duration_seconds_bucket{", l, ",le=\"",
                             kLatencyBounds[b], "\"} ", cumulative, "\n");
           }
           cumulative += e.latency_bucket(kLatencyBounds.size());
           absl::StrAppend(&out, "lbkit_request_duration_seconds_bucket{", l, ",le=\"+Inf\"} ",
                           cumulative, "\n");
           absl::StrAppend(&out, "lbkit_request_duration_seconds_sum{", l, "} ",
                           absl::StrFormat("%.9f", e.latency_sum_ns() * 1e-9), "\n");
           absl::StrAppend(&out, "lbkit_request_duration_seconds_count{", l, "} ", cumulative,
                           "\n");
         });
  // Per policy instance.
  auto policy_family = [&](const char* name, const char* help,
                           uint64_t PolicyStats::Snapshot::*value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n");
    for (const auto& p : all) {
      absl::StrAppend(&out, name, "{target=\"", PromValue(p.target), "\",policy=\"",
                      PromValue(p.policy), "\",instance=\"", p.id, "\"} ", p.*value, "\n");
    }
  };
  policy_family("lbkit_policy_picker_updates_total", "Pickers a policy instance published.",
                &PolicyStats::Snapshot::picker_updates);
  policy_family("lbkit_policy_drops_total",
                "Calls a policy failed on purpose (circuit breaker overflow).",
                &PolicyStats::Snapshot::drops);
  policy_family("lbkit_policy_resolver_errors_total",
                "Resolver errors a policy instance received.",
                &PolicyStats::Snapshot::resolver_errors);
  {
    absl::MutexLock lock(&g_sections_mu);
    for (const auto& [name, section] : Sections()) out += section.prometheus();
  }
  return out;
}

}  // namespace lbkit::stats
