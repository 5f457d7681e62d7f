// lbkit-file: endpoints (with locality, weight, labels) and optionally a
// service config from a JSON file that is followed while the channel runs.
//
// A watcher thread per channel owns the file: it waits on inotify for the
// file's directory (so an atomic rename-into-place, as Kubernetes ConfigMap
// updates do, is seen as well as an in-place rewrite), on a periodic
// re-check as a fallback, and on wake-ups from the resolver (re-resolution
// requests, shutdown). It reads and parses the file, resolves names, and
// posts the result onto the channel's WorkSerializer. File I/O and name
// lookups therefore never run on the WorkSerializer, and a re-resolution
// request is never answered synchronously (docs/grpc-internals.md, "Re-resolution").
//
// A file that cannot be read or parsed never replaces a good endpoint set:
// the watcher logs one line naming the file and the problem and keeps the
// last good result. Before any good file, RPCs fail with UNAVAILABLE and
// that message.

#include "resolvers/file/file_resolver.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <type_traits>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/file/endpoints_file.h"
#include "resolvers/register.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"
#include "src/core/lib/service_config/service_config_impl.h"

namespace lbkit::resolvers {

namespace {

using Clock = std::chrono::steady_clock;

// Writes arriving this close together are one change (a truncate followed
// by a write, or a write in several chunks): wait for quiet first.
constexpr auto kQuietPeriod = std::chrono::milliseconds(30);
constexpr auto kMaxSettle = std::chrono::milliseconds(300);
// Re-resolution requests re-read the file at most this often.
constexpr auto kReresolutionInterval = std::chrono::seconds(1);
// The symlink kubelet swaps to update every file of a mounted ConfigMap.
constexpr absl::string_view kDataLink = "..data";

absl::StatusOr<std::chrono::milliseconds> ParseRefresh(absl::string_view text) {
  absl::string_view number = text;
  double scale = 0;
  if (absl::ConsumeSuffix(&number, "ms")) {
    scale = 1;
  } else if (absl::ConsumeSuffix(&number, "s")) {
    scale = 1000;
  } else if (absl::ConsumeSuffix(&number, "m")) {
    scale = 60 * 1000;
  } else if (absl::ConsumeSuffix(&number, "h")) {
    scale = 3600 * 1000;
  }
  double value = 0;
  // Both bounds are inclusive.
  if (scale == 0 || !absl::SimpleAtod(number, &value) || !(value * scale >= 10) ||
      value * scale > 24 * 3600 * 1000.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refresh=", text, " is not a duration between 10ms and 24h (e.g. 500ms, 1s, 5m, 24h)"));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(value * scale));
}

class FileResolver;

// What the watcher thread shares with the resolver. The thread keeps it
// alive; the resolver's reference is dropped when it shuts down.
struct WatchState {
  std::string path;
  std::string directory;
  std::string file_name;
  std::chrono::milliseconds refresh{5000};
  grpc_core::ChannelArgs channel_args;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer;
  int wake_fd = -1;  // eventfd: re-resolution requests and shutdown

  absl::Mutex mu;
  // Null once the resolver has shut down: the thread then exits.
  grpc_core::RefCountedPtr<FileResolver> resolver ABSL_GUARDED_BY(mu);
  bool reread_requested ABSL_GUARDED_BY(mu) = false;
};

class FileResolver : public grpc_core::Resolver {
 public:
  explicit FileResolver(grpc_core::ResolverArgs args)
      : uri_(args.uri),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}
  ~FileResolver() override {
    FileWatcherHooks::destroyed.fetch_add(1);
    if (grpc_core::ExecCtx::Get() == nullptr) {
      FileWatcherHooks::destroyed_without_exec_ctx.fetch_add(1);
      gpr_log(GPR_ERROR, "lbkit-file: resolver destroyed outside an ExecCtx (a bug)");
    }
  }

  void StartLocked() override;
  void RequestReresolutionLocked() override;


  // On the WorkSerializer: a result from the watcher thread.
  void ReportLocked(Result result) {
    if (shutdown_) return;
    result_handler_->ReportResult(std::move(result));
  }

 private:
  void ShutdownLocked() override;
  void ReportErrorLocked(absl::string_view message) {
    Result result;
    result.addresses = absl::UnavailableError(absl::StrCat(kFileScheme, ": ", message));
    result.args = channel_args_;
    result_handler_->ReportResult(std::move(result));
  }

  const grpc_core::URI uri_;
  const grpc_core::ChannelArgs channel_args_;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  std::unique_ptr<ResultHandler> result_handler_;
  std::shared_ptr<WatchState> state_;
  bool shutdown_ = false;
};

//
// The watcher thread
//

class Watcher {
 public:
  explicit Watcher(std::shared_ptr<WatchState> state) : state_(std::move(state)) {}

  void Run() {
    inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ >= 0) {
      // The directory, not the file: a rename into place replaces the file's
      // inode, and a watch on the old inode would never fire again.
      if (inotify_add_watch(inotify_fd_, state_->directory.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY |
                                IN_DELETE | IN_MOVED_FROM | IN_ATTRIB) < 0) {
        gpr_log(GPR_ERROR, "lbkit-file: %s: cannot watch directory %s (%s); "
                "re-reading every %lld ms instead",
                state_->path.c_str(), state_->directory.c_str(), strerror(errno),
                static_cast<long long>(state_->refresh.count()));
        close(inotify_fd_);
        inotify_fd_ = -1;
      }
    }
    ReadAndReport();
    Clock::time_point next_check = Clock::now() + state_->refresh;
    Clock::time_point last_reresolution_read = Clock::now();
    while (true) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          next_check - Clock::now());
      pollfd fds[2] = {{state_->wake_fd, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
      const int n = poll(fds, inotify_fd_ >= 0 ? 2 : 1,
                         static_cast<int>(std::max<int64_t>(0, wait.count())));
      if (Stopped()) break;
      bool read_now = false;
      if (n > 0 && (fds[0].revents & POLLIN)) {
        uint64_t ignored;
        (void)!read(state_->wake_fd, &ignored, sizeof(ignored));
        absl::MutexLock lock(&state_->mu);
        if (state_->reread_requested) {
          state_->reread_requested = false;
          // Rate-limited: a policy whose backends all fail asks repeatedly.
          const auto earliest = last_reresolution_read + kReresolutionInterval;
          if (Clock::now() >= earliest) {
            read_now = true;
            last_reresolution_read = Clock::now();
          } else {
            next_check = std::min(next_check, earliest);
          }
        }
      }
      if (n > 0 && inotify_fd_ >= 0 && (fds[1].revents & POLLIN) && DrainEvents()) {
        Settle();
        read_now = true;
      }
      if (Clock::now() >= next_check) read_now = true;
      if (Stopped()) break;
      if (read_now) {
        ReadAndReport();
        next_check = Clock::now() + state_->refresh;
      }
    }
    if (inotify_fd_ >= 0) close(inotify_fd_);
    close(state_->wake_fd);
  }

 private:
  bool Stopped() {
    absl::MutexLock lock(&state_->mu);
    return state_->resolver == nullptr;
  }

  // Reads pending inotify events; true if one concerns our file.
  bool DrainEvents() {
    bool ours = false;
    alignas(inotify_event) char buffer[4096];
    while (true) {
      const ssize_t len = read(inotify_fd_, buffer, sizeof(buffer));
      if (len <= 0) break;
      for (ssize_t off = 0; off < len;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + off);
        // Kubernetes updates a mounted ConfigMap by pointing the "..data"
        // symlink at a new directory: the file's own name (a symlink
        // through "..data") sees no event (docs/resolvers.md).
        if (event->len > 0 &&
            (state_->file_name == event->name || absl::string_view(event->name) == kDataLink)) {
          ours = true;
        }
        if (event->mask & IN_Q_OVERFLOW) ours = true;
        off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return ours;
  }

  // Waits until the file has been quiet for kQuietPeriod (at most
  // kMaxSettle), so that a rewrite is read once it is complete.
  void Settle() {
    const auto deadline = Clock::now() + kMaxSettle;
    while (Clock::now() < deadline) {
      pollfd fd{inotify_fd_, POLLIN, 0};
      if (poll(&fd, 1, static_cast<int>(kQuietPeriod.count())) <= 0) return;
      DrainEvents();
    }
  }

  // Reads the file and reports it if it changed. Unchanged content is
  // reported again only when a host name in it now resolves differently:
  // names are looked up on every refresh and re-resolution request.
  void ReadAndReport() {
    std::string content;
    absl::Status status = ReadFile(&content);
    const bool unchanged = status.ok() && have_content_ && content == last_content_;
    if (unchanged && !last_has_names_) return;
    absl::StatusOr<grpc_core::Resolver::Result> result =
        status.ok() ? BuildResult(content) : status;
    if (!result.ok()) {
      const std::string message =
          absl::StrCat(state_->path, ": ", result.status().message());
      if (message == last_error_) return;  // said once already
      last_error_ = message;
      if (have_good_) {
        gpr_log(GPR_ERROR, "lbkit-file: %s; keeping the last good endpoint set",
                message.c_str());
        return;
      }
      gpr_log(GPR_ERROR, "lbkit-file: %s; no good endpoint set yet", message.c_str());
      grpc_core::Resolver::Result error;
      error.addresses = absl::UnavailableError(absl::StrCat(kFileScheme, ": ", message));
      error.args = state_->channel_args;
      Post(std::move(error));
      return;
    }
    last_error_.clear();
    if (unchanged && *result->addresses == last_addresses_) return;
    have_content_ = true;
    last_content_ = std::move(content);
    last_addresses_ = *result->addresses;
    have_good_ = true;
    Post(*std::move(result));
  }

  absl::Status ReadFile(std::string* content) {
    std::ifstream in(state_->path, std::ios::binary);
    if (!in) {
      return absl::UnavailableError(absl::StrCat("cannot read the file: ", strerror(errno)));
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    *content = buffer.str();
    return absl::OkStatus();
  }

  absl::StatusOr<grpc_core::Resolver::Result> BuildResult(const std::string& content) {
    auto file = ParseEndpointsFile(content);
    if (!file.ok()) return file.status();
    grpc_core::Resolver::Result result;
    result.args = state_->channel_args;
    if (file->service_config_json.has_value()) {
      auto config = grpc_core::ServiceConfigImpl::Create(state_->channel_args,
                                                         *file->service_config_json);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("serviceConfig: ", config.status().message()));
      }
      result.service_config = *std::move(config);
    }
    last_has_names_ = HasHostNames(file->endpoints);
    auto addresses = ToServerAddresses(file->endpoints);
    if (!addresses.ok()) return addresses.status();
    result.addresses = *std::move(addresses);
    return result;
  }

  void Post(grpc_core::Resolver::Result result) {
    // This thread is not one of gRPC's: Run() may execute queued callbacks
    // inline, and they expect an ExecCtx. The ExecCtx is declared before the
    // reference so that it outlives it: once the channel has shut the
    // resolver down, this reference can be the last one, and dropping it
    // destroys the channel's result handler and possibly the channel stack,
    // which needs an ExecCtx (docs/grpc-internals.md, "Threads lbkit owns").
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    auto shared = std::make_shared<grpc_core::Resolver::Result>(std::move(result));
    grpc_core::RefCountedPtr<FileResolver> resolver;
    {
      absl::MutexLock lock(&state_->mu);
      resolver = state_->resolver;
    }
    if (resolver == nullptr) return;
    state_->work_serializer->Run(
        [resolver, shared]() { resolver->ReportLocked(std::move(*shared)); },
        DEBUG_LOCATION);
    if (auto* hook = FileWatcherHooks::after_post.load()) hook();
  }

  std::shared_ptr<WatchState> state_;
  int inotify_fd_ = -1;
  bool have_content_ = false;
  bool have_good_ = false;
  std::string last_content_;
  grpc_core::ServerAddressList last_addresses_;
  // Whether the last parsed file named a host by name.
  bool last_has_names_ = false;
  std::string last_error_;
};

//
// FileResolver
//

void FileResolver::StartLocked() {
  if (!uri_.authority().empty()) {
    ReportErrorLocked(absl::StrCat("the target must be lbkit-file:///ABSOLUTE/PATH "
                                   "(no authority), not ", uri_.ToString()));
    return;
  }
  const std::string& path = uri_.path();
  if (path.empty() || path[0] != '/' || path.back() == '/') {
    ReportErrorLocked(absl::StrCat("the target must name an absolute file path, e.g. "
                                   "lbkit-file:///etc/lbkit/endpoints.json, not ",
                                   uri_.ToString()));
    return;
  }
  auto state = std::make_shared<WatchState>();
  state->path = path;
  const size_t slash = path.rfind('/');
  state->directory = slash == 0 ? "/" : path.substr(0, slash);
  state->file_name = path.substr(slash + 1);
  state->channel_args = channel_args_;
  state->work_serializer = work_serializer_;
  const auto& query = uri_.query_parameter_map();
  if (auto it = query.find("refresh"); it != query.end()) {
    auto refresh = ParseRefresh(it->second);
    if (!refresh.ok()) {
      ReportErrorLocked(refresh.status().message());
      return;
    }
    state->refresh = *refresh;
  }
  state->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->wake_fd < 0) {
    ReportErrorLocked(absl::StrCat("eventfd: ", strerror(errno)));
    return;
  }
  {
    absl::MutexLock lock(&state->mu);
    state->resolver = Ref(DEBUG_LOCATION, "watcher");
  }
  state_ = state;
  // Detached: the thread owns what it uses (the WatchState) and stops on its
  // own once the resolver drops its reference. Joining in ShutdownLocked
  // could deadlock, since the thread may itself be running the
  // WorkSerializer's queue when the channel shuts the resolver down.
  std::thread([state]() mutable {
    Watcher(state).Run();
    // The WatchState holds channel args and the WorkSerializer: its last
    // reference may be this one.
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    state.reset();
  }).detach();
}

// The wake-up is written under the lock: the thread closes the eventfd only
// after it has seen, under the same lock, that the resolver is gone, so a
// write can never reach a closed (or reused) descriptor.
void FileResolver::RequestReresolutionLocked() {
  FileWatcherHooks::reresolution_requests.fetch_add(1);
  if (state_ == nullptr) return;
  absl::MutexLock lock(&state_->mu);
  state_->reread_requested = true;
  const uint64_t one = 1;
  (void)!write(state_->wake_fd, &one, sizeof(one));
}

void FileResolver::ShutdownLocked() {
  shutdown_ = true;
  if (state_ == nullptr) return;
  grpc_core::RefCountedPtr<FileResolver> self;  // released after the lock
  {
    absl::MutexLock lock(&state_->mu);
    self = std::move(state_->resolver);
    const uint64_t one = 1;
    (void)!write(state_->wake_fd, &one, sizeof(one));
  }
  state_.reset();
}

class FileResolverFactory : public grpc_core::ResolverFactory {
 public:
  absl::string_view scheme() const override { return kFileScheme; }
  // A bad path or parameter is reported through the resolver, so RPCs fail
  // with the reason instead of the channel failing to be created.
  bool IsValidUri(const grpc_core::URI& /*uri*/) const override { return true; }
  grpc_core::OrphanablePtr<grpc_core::Resolver> CreateResolver(
      grpc_core::ResolverArgs args) const override {
    return grpc_core::MakeOrphanable<FileResolver>(std::move(args));
  }
  std::string GetDefaultAuthority(const grpc_core::URI& uri) const override {
    const std::string& path = uri.path();
    return path.substr(path.rfind('/') + 1);
  }
};

}  // namespace

void RegisterFileResolver(grpc_core::CoreConfiguration::Builder* builder) {
  builder->resolver_registry()->RegisterResolverFactory(
      std::make_unique<FileResolverFactory>());
}

}  // namespace lbkit::resolvers
