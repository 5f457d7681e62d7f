#include "resolvers/k8s/list_watch.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "resolvers/k8s/kube_objects.h"
#include "resolvers/k8s/watch_stream.h"

namespace lbkit::resolvers::k8s {

namespace {

std::atomic<int> g_watch_timeout_for_testing{0};

std::string UrlEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

// Exponential backoff with jitter: 0.5 s doubling to 30 s, each delay
// drawn from [0.8, 1.2] of the step so that many clients a restarted API
// server sees do not come back in step.
class Backoff {
 public:
  std::chrono::milliseconds Next() {
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const auto delay = std::chrono::milliseconds(static_cast<int64_t>(step_ms_ * jitter(rng_)));
    step_ms_ = std::min(step_ms_ * 2, 30000.0);
    return delay;
  }
  void Reset() { step_ms_ = 500; }

 private:
  double step_ms_ = 500;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

absl::Status ApiError(absl::string_view verb, const ListWatchSpec& spec,
                      const KubeClient::Response& response) {
  if (!response.transport.ok()) {
    return absl::Status(response.transport.code(),
                        absl::StrCat(verb, " ", spec.resource, ": ", response.transport.message()));
  }
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  std::string detail = absl::StrCat("HTTP ", response.status);
  if (auto status = ParseStatus(body); status.has_value() && !status->message.empty()) {
    detail = absl::StrCat(response.status, " ", status->reason, ": ", status->message);
  } else if (response.status == 200) {
    detail = "the response is not a JSON list";
  }
  std::string hint;
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  if (response.status == 401) {
    hint = " (the API server refused the credentials: an expired token, or a client "
           "certificate it does not trust)";
    code = absl::StatusCode::kUnauthenticated;
  } else if (response.status == 403) {
    hint = absl::StrCat(" (grant \"", verb, "\" on \"", spec.resource,
                        "\" to the pod's service account: examples/kubernetes/rbac.yaml)");
    code = absl::StatusCode::kPermissionDenied;
  } else if (response.status == 404) {
    code = absl::StatusCode::kNotFound;
  }
  return absl::Status(code, absl::StrCat(verb, " ", spec.resource, ": ", detail, hint));
}

struct ListWatch::State {
  std::shared_ptr<const KubeClient> client;
  ListWatchSpec spec;
  ListWatchCallbacks callbacks;
  Canceller cancel;
  mutable absl::Mutex mu;
  ListWatchStats stats ABSL_GUARDED_BY(mu);

  enum class WatchEnd { kEnded, kGone, kError, kCancelled };

  std::string Selectors() const {
    std::string out;
    if (!spec.label_selector.empty()) {
      absl::StrAppend(&out, "&labelSelector=", UrlEncode(spec.label_selector));
    }
    if (!spec.field_selector.empty()) {
      absl::StrAppend(&out, "&fieldSelector=", UrlEncode(spec.field_selector));
    }
    return out;
  }

  // An error was reported and no watch has delivered since.
  bool erred = false;

  void CountError(const absl::Status& error) {
    erred = true;
    {
      absl::MutexLock lock(&mu);
      ++stats.errors;
      stats.last_error = std::string(error.message());
    }
    callbacks.on_error(error);
  }

  // Every page of one list; the list's resourceVersion in `*version`.
  absl::StatusOr<std::vector<nlohmann::json>> List(std::string* version) {
    std::vector<nlohmann::json> items;
    std::string next;
    for (int restarts = 0;;) {
      const std::string query = absl::StrCat(spec.path, "?limit=500", Selectors(),
                                             next.empty() ? "" : "&continue=", UrlEncode(next));
      KubeClient::Response response = client->Get(query, &cancel);
      if (cancel.cancelled()) return absl::CancelledError("stopped");
      if (response.status == 410 && !next.empty() && ++restarts <= 3) {
        // The continue token expired between pages: start over.
        items.clear();
        next.clear();
        continue;
      }
      if (response.status == 404 && next.empty() && !spec.fallback_paths.empty()) {
        spec.path = spec.fallback_paths.front();
        spec.fallback_paths.erase(spec.fallback_paths.begin());
        absl::MutexLock lock(&mu);
        stats.path = spec.path;
        continue;
      }
      if (!response.transport.ok() || response.status != 200) {
        return ApiError("list", spec, response);
      }
      nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
      const auto list_items = body.is_object() ? body.find("items") : body.end();
      if (!body.is_object() || list_items == body.end() ||
          !(list_items->is_array() || list_items->is_null())) {
        return ApiError("list", spec, response);
      }
      if (list_items->is_array()) {
        for (nlohmann::json& item : *list_items) items.push_back(std::move(item));
      }
      *version = ObjectResourceVersion(body);
      next.clear();
      if (auto metadata = body.find("metadata"); metadata != body.end() && metadata->is_object()) {
        auto token = metadata->find("continue");
        if (token != metadata->end() && token->is_string()) next = token->get<std::string>();
      }
      if (next.empty()) return items;
    }
  }

  WatchEnd Watch(std::string* version, absl::Status* error, bool* saw_event) {
    int timeout = g_watch_timeout_for_testing.load();
    if (timeout <= 0) timeout = std::uniform_int_distribution<int>(300, 600)(rng);
    const std::string query =
        absl::StrCat(spec.path, "?watch=1&allowWatchBookmarks=true&resourceVersion=",
                     UrlEncode(*version), "&timeoutSeconds=", timeout, Selectors());
    {
      absl::MutexLock lock(&mu);
      ++stats.watches;
    }
    WatchStream stream;
    bool gone = false;
    absl::Status event_error;
    auto on_event = [&](absl::StatusOr<WatchEvent> event) {
      if (gone || !event_error.ok()) return;
      if (!event.ok()) {
        event_error = event.status();
        return;
      }
      if (event->type == WatchEvent::Type::kError) {
        auto status = ParseStatus(event->object);
        if (status.has_value() && status->code == 410) {
          gone = true;
        } else {
          event_error = absl::UnavailableError(absl::StrCat(
              "the watch sent an error: ", status.has_value() ? status->message : "(no Status)"));
        }
        return;
      }
      if (!event->resource_version.empty()) *version = event->resource_version;
      if (!*saw_event && erred && callbacks.on_recovered) {
        erred = false;
        callbacks.on_recovered();
      }
      *saw_event = true;
      absl::MutexLock lock(&mu);
      stats.resource_version = *version;
      if (event->type == WatchEvent::Type::kBookmark) {
        ++stats.bookmarks;
        return;
      }
      ++stats.events;
      mu.Unlock();
      callbacks.on_event(event->object, event->type == WatchEvent::Type::kDeleted);
      mu.Lock();
    };
    std::function<bool(absl::string_view)> on_bytes = [&](absl::string_view bytes) {
      bool ok = stream.Feed(bytes, on_event);
      return ok && !gone && event_error.ok();
    };
    KubeClient::Response response =
        client->Stream(query, on_bytes, std::chrono::seconds(timeout + 30), &cancel);
    if (cancel.cancelled()) return WatchEnd::kCancelled;
    if (gone || response.status == 410) return WatchEnd::kGone;
    if (!event_error.ok()) {
      *error = absl::UnavailableError(absl::StrCat("watch ", spec.resource, ": ", event_error.message()));
      return WatchEnd::kError;
    }
    if (response.status != 200) {
      *error = ApiError("watch", spec, response);
      return WatchEnd::kError;
    }
    if (!response.transport.ok() || stream.HasPartialLine()) {
      *error = absl::UnavailableError(absl::StrCat(
          "watch ", spec.resource, ": the stream broke",
          stream.HasPartialLine() ? absl::StrCat(" inside an event (", stream.partial_bytes(), " bytes)")
                                  : "",
          response.transport.ok() ? "" : absl::StrCat(": ", response.transport.message())));
      return WatchEnd::kError;
    }
    return WatchEnd::kEnded;
  }

  void Run() {
    Backoff backoff;
    while (!cancel.cancelled()) {
      std::string version;
      auto items = List(&version);
      if (cancel.cancelled()) return;
      if (!items.ok()) {
        CountError(items.status());
        if (!cancel.Sleep(backoff.Next())) return;
        continue;
      }
      erred = false;  // on_list replaces everything, errors included
      {
        absl::MutexLock lock(&mu);
        if (stats.lists++ > 0) ++stats.relists;
        stats.synced = true;
        stats.resource_version = version;
        stats.last_error.clear();
      }
      callbacks.on_list(*std::move(items));
      backoff.Reset();
      while (!cancel.cancelled()) {
        absl::Status error;
        bool saw_event = false;
        const auto started = std::chrono::steady_clock::now();
        const WatchEnd end = Watch(&version, &error, &saw_event);
        if (end == WatchEnd::kCancelled) return;
        if (end == WatchEnd::kGone) break;  // list again
        // A watch that delivered something, or lasted, shows the server
        // well: a later break starts the backoff over (else a watch that
        // broke once an hour would wait ever longer).
        const bool served =
            saw_event || std::chrono::steady_clock::now() - started > std::chrono::seconds(1);
        if (served) backoff.Reset();
        if (end == WatchEnd::kError) {
          CountError(error);
        } else if (served) {
          continue;  // the server ended the watch: resume at once
        }
        // An error, or a server ending every watch at once: wait.
        if (!cancel.Sleep(backoff.Next())) return;
      }
    }
  }

  std::mt19937_64 rng{std::random_device{}()};
};

void ListWatch::SetWatchTimeoutForTesting(int seconds) { g_watch_timeout_for_testing = seconds; }

std::shared_ptr<ListWatch> ListWatch::Start(std::shared_ptr<const KubeClient> client,
                                            ListWatchSpec spec, ListWatchCallbacks callbacks) {
  auto state = std::make_shared<State>();
  state->client = std::move(client);
  state->stats.resource = spec.resource;
  state->stats.path = spec.path;
  state->spec = std::move(spec);
  state->callbacks = std::move(callbacks);
  // The thread owns a reference to the state only (no gRPC object), so it
  // may end whenever it notices Stop().
  std::thread([state]() { state->Run(); }).detach();
  return std::shared_ptr<ListWatch>(new ListWatch(std::move(state)));
}

ListWatch::~ListWatch() { Stop(); }

void ListWatch::Stop() { state_->cancel.Cancel(); }

ListWatchStats ListWatch::stats() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stats;
}

}  // namespace lbkit::resolvers::k8s
