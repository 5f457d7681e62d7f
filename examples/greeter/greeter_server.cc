// greeter_server: a backend to try lbkit's load-balancing policies against.
//
// It answers lbkit.examples.Greeter with its own name, so a client can count
// where its RPCs went, and lets tests and benchmarks make it slow, failing or
// unhealthy: from flags at start-up, at run time through the GreeterControl
// service, and with signals (SIGUSR1 = NOT_SERVING, SIGUSR2 = SERVING).
// grpc.health.v1.Health is gRPC's built-in implementation.
//
// Once listening it prints exactly one line to stdout,
//   listening on 127.0.0.1:PORT
// (the --host, and the port actually bound: --port=0 picks a free one), so
// that scripts can start it and parse the port. Everything else goes to
// stderr. SIGTERM or SIGINT shut it down gracefully, after --drain_ms of
// reporting NOT_SERVING; a second one kills it at once.
//
// With --etcd it registers itself with lbkit::EtcdRegistration (a lease kept
// alive), so clients of lbkit-etcd://ETCD/PREFIX find it; SIGTERM removes
// the key before shutting down, SIGKILL leaves it to expire with the lease.

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>  // strerror
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "greeter.grpc.pb.h"
#include "lbkit/etcd.h"
#include "status_codes.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int32_t, port, 0, "Port to listen on; 0 picks a free port.");
ABSL_FLAG(std::string, name, "",
          "Backend name returned in every reply (default: server-PORT, with the "
          "port actually bound).");
ABSL_FLAG(int32_t, delay_ms, 0, "Delay added to every SayHello, in milliseconds.");
ABSL_FLAG(double, error_rate, 0.0,
          "Probability in [0, 1] that a SayHello fails with --error_code.");
ABSL_FLAG(std::string, error_code, "UNAVAILABLE",
          "gRPC status code name injected failures carry, e.g. UNAVAILABLE.");
ABSL_FLAG(int32_t, drain_ms, 0,
          "On SIGTERM/SIGINT, report NOT_SERVING and keep serving this long before "
          "shutting down, so that health-checking clients move away first.");
ABSL_FLAG(int32_t, max_connection_age_ms, 0,
          "Close each client connection (GOAWAY) after about this long (gRPC's "
          "GRPC_ARG_MAX_CONNECTION_AGE_MS, +-10% jitter); 0: never. Clients then "
          "reconnect, and gRPC's (and lbkit's) policies ask their resolver again.");
ABSL_FLAG(bool, health_service, true,
          "Serve grpc.health.v1.Health; false makes health checks end UNIMPLEMENTED.");
ABSL_FLAG(std::string, etcd, "",
          "etcd endpoints (HOST:PORT,...) to register this server with, for clients "
          "using lbkit-etcd; empty: no registration.");
ABSL_FLAG(std::string, etcd_prefix, "/services/greeter/",
          "Key prefix of the registration (the key is PREFIX + HOST:PORT).");
ABSL_FLAG(int32_t, etcd_ttl_s, 10,
          "Lease TTL of the registration, in seconds: how long a killed server stays "
          "registered.");
ABSL_FLAG(std::string, locality, "",
          "region[/zone[/subZone]] registered with --etcd.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS instead of plaintext (with --tls_key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: with TLS, require and verify client certificates (mTLS).");
ABSL_FLAG(int32_t, max_threads, 256,
          "Upper bound on the sync server's threads, i.e. on concurrent RPCs; "
          "beyond it new RPCs fail with RESOURCE_EXHAUSTED.");

namespace lbkit_examples {
namespace {

using lbkit::examples::Behavior;
using lbkit::examples::GetBehaviorRequest;
using lbkit::examples::Greeter;
using lbkit::examples::GreeterControl;
using lbkit::examples::HelloReply;
using lbkit::examples::HelloRequest;
using lbkit::examples::HoldRequest;

// In-flight RPCs get this long to finish once shutdown starts; after it gRPC
// cancels them.
constexpr auto kShutdownGrace = std::chrono::seconds(1);

// A delayed RPC wakes up this often to notice that it has been cancelled (by
// its deadline, its client or shutdown) and give its thread back.
constexpr auto kCancelPollInterval = std::chrono::milliseconds(20);

void Log(absl::string_view message) {
  absl::FPrintF(stderr, "greeter_server: %s\n", message);
}

// "host:port", bracketing IPv6 literals.
std::string JoinHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

struct BehaviorSettings {
  int32_t delay_ms = 0;
  double error_rate = 0.0;
  grpc::StatusCode error_code = grpc::StatusCode::UNAVAILABLE;
  bool serving = true;
};

// Checks the fields of `update` that are set; returns an error message, or
// nothing if they are all acceptable. `prefix` goes before field names in the
// message ("--" when the values came from flags of the same names).
std::optional<std::string> ValidateBehavior(const Behavior& update,
                                            absl::string_view prefix = "") {
  if (update.has_delay_ms() && update.delay_ms() < 0) {
    return absl::StrCat(prefix, "delay_ms must be >= 0, not ", update.delay_ms());
  }
  // Written so that NaN fails too.
  if (update.has_error_rate() && !(update.error_rate() >= 0.0 && update.error_rate() <= 1.0)) {
    return absl::StrCat(prefix, "error_rate must be in [0, 1], not ", update.error_rate());
  }
  if (update.has_error_code() && !StatusCodeFromName(update.error_code())) {
    return absl::StrCat("unknown ", prefix, "error_code \"", update.error_code(),
                        "\"; expected one of ", AllStatusCodeNames());
  }
  return std::nullopt;
}

std::string DescribeBehavior(const BehaviorSettings& b) {
  return absl::StrFormat("delay_ms=%d error_rate=%g error_code=%s serving=%s", b.delay_ms,
                         b.error_rate, StatusCodeName(b.error_code),
                         b.serving ? "true" : "false");
}

// Everything about this backend that can change while it runs. Shared by the
// RPC handlers (any number of threads) and the signal thread.
class BackendState {
 public:
  explicit BackendState(const BehaviorSettings& initial) : behavior_(initial) {}

  // The name is only known once the port is bound, which is also when the
  // server starts taking RPCs; it is set before the port is announced.
  void SetName(std::string name) {
    absl::MutexLock lock(&mu_);
    name_ = std::move(name);
  }

  std::string name() const {
    absl::MutexLock lock(&mu_);
    return name_;
  }

  struct Snapshot {
    std::string name;
    BehaviorSettings behavior;
  };

  Snapshot Get() const {
    absl::MutexLock lock(&mu_);
    return Snapshot{name_, behavior_};
  }

  // Hands over gRPC's health service (it exists only once the server is
  // built) and brings it in line with `serving`.
  void AttachHealthService(grpc::HealthCheckServiceInterface* health) {
    absl::MutexLock lock(&mu_);
    health_ = health;
    if (health_ != nullptr) health_->SetServingStatus(behavior_.serving);
  }

  // Applies the fields of `update` that are set, which must have passed
  // ValidateBehavior(), and returns the complete result.
  BehaviorSettings Update(const Behavior& update) {
    absl::MutexLock lock(&mu_);
    if (update.has_delay_ms()) behavior_.delay_ms = update.delay_ms();
    if (update.has_error_rate()) behavior_.error_rate = update.error_rate();
    if (update.has_error_code()) behavior_.error_code = *StatusCodeFromName(update.error_code());
    if (update.has_serving()) SetServingLocked(update.serving());
    return behavior_;
  }

  void SetServing(bool serving) {
    absl::MutexLock lock(&mu_);
    SetServingLocked(serving);
  }

  // Reports NOT_SERVING to every health watcher, for good, so that clients
  // move away before the connections close.
  void ShutdownHealth() {
    absl::MutexLock lock(&mu_);
    behavior_.serving = false;
    health_frozen_ = true;
    if (health_ != nullptr) health_->Shutdown();
  }

 private:
  // Holding mu_ across the health service's call keeps the recorded status and
  // the reported one in the same order under concurrent changes; the health
  // service never calls back into this class, so it cannot deadlock.
  void SetServingLocked(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (health_frozen_) return;
    behavior_.serving = serving;
    if (health_ != nullptr) health_->SetServingStatus(serving);
  }

  mutable absl::Mutex mu_;
  std::string name_ ABSL_GUARDED_BY(mu_);
  BehaviorSettings behavior_ ABSL_GUARDED_BY(mu_);
  grpc::HealthCheckServiceInterface* health_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool health_frozen_ ABSL_GUARDED_BY(mu_) = false;
};

// Sleeps for `delay` unless the RPC is cancelled first; returns false if it
// was. A cancelled RPC's thread is better spent on the next one, and shutdown
// must not wait out long delays.
bool SleepUnlessCancelled(grpc::ServerContext* context, std::chrono::milliseconds delay) {
  const auto until = std::chrono::steady_clock::now() + delay;
  for (;;) {
    if (context->IsCancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        until - now, kCancelPollInterval));
  }
}

bool ShouldInjectError(double rate) {
  if (rate <= 0.0) return false;
  if (rate >= 1.0) return true;
  // absl::BitGen is not thread-safe, and a shared generator behind a mutex
  // would serialise every RPC.
  thread_local absl::BitGen bitgen;
  return absl::Bernoulli(bitgen, rate);
}

// SayHello calls in progress, and the most there have been at once (for tests
// that check how many calls a client lets through).
std::atomic<int> g_in_flight{0};
std::atomic<int> g_max_in_flight{0};

class InFlightScope {
 public:
  InFlightScope() {
    const int now = g_in_flight.fetch_add(1) + 1;
    int max = g_max_in_flight.load();
    while (now > max && !g_max_in_flight.compare_exchange_weak(max, now)) {
    }
  }
  ~InFlightScope() { g_in_flight.fetch_sub(1); }
};

class GreeterService final : public Greeter::Service {
 public:
  explicit GreeterService(BackendState* state) : state_(state) {}

  grpc::Status SayHello(grpc::ServerContext* context, const HelloRequest* request,
                        HelloReply* reply) override {
    InFlightScope in_flight;
    const BackendState::Snapshot s = state_->Get();
    if (s.behavior.delay_ms > 0 &&
        !SleepUnlessCancelled(context, std::chrono::milliseconds(s.behavior.delay_ms))) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled during the injected delay");
    }
    if (s.behavior.error_code != grpc::StatusCode::OK &&
        ShouldInjectError(s.behavior.error_rate)) {
      return grpc::Status(s.behavior.error_code,
                          absl::StrCat("injected ", StatusCodeName(s.behavior.error_code),
                                       " from ", s.name));
    }
    reply->set_message(absl::StrCat("hello ", request->name(), " from ", s.name));
    reply->set_backend(s.name);
    return grpc::Status::OK;
  }

  grpc::Status Hold(grpc::ServerContext* context, const HoldRequest* request,
                    grpc::ServerWriter<HelloReply>* writer) override {
    const BackendState::Snapshot s = state_->Get();
    HelloReply reply;
    reply.set_message(absl::StrCat("holding a stream on ", s.name));
    reply.set_backend(s.name);
    if (!writer->Write(reply)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    // Bounded, like every wait here: a forgotten stream ends by itself.
    const int hold_ms = request->hold_ms() > 0 ? request->hold_ms() : 10 * 60 * 1000;
    if (!SleepUnlessCancelled(context, std::chrono::milliseconds(hold_ms))) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled by the client");
    }
    return grpc::Status::OK;
  }

 private:
  BackendState* const state_;
};

void FillBehavior(const BehaviorSettings& b, Behavior* out) {
  out->set_delay_ms(b.delay_ms);
  out->set_error_rate(b.error_rate);
  out->set_error_code(StatusCodeName(b.error_code));
  out->set_serving(b.serving);
  out->set_max_in_flight(g_max_in_flight.load());
}

class ControlService final : public GreeterControl::Service {
 public:
  explicit ControlService(BackendState* state) : state_(state) {}

  grpc::Status SetBehavior(grpc::ServerContext* context, const Behavior* request,
                           Behavior* reply) override {
    if (std::optional<std::string> error = ValidateBehavior(*request)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, *error);
    }
    const BehaviorSettings now = state_->Update(*request);
    Log(absl::StrCat(state_->name(), ": behaviour set by ", context->peer(), ": ",
                     DescribeBehavior(now)));
    FillBehavior(now, reply);
    return grpc::Status::OK;
  }

  grpc::Status GetBehavior(grpc::ServerContext* /*context*/, const GetBehaviorRequest* /*request*/,
                           Behavior* reply) override {
    FillBehavior(state_->Get().behavior, reply);
    return grpc::Status::OK;
  }

 private:
  BackendState* const state_;
};

// Runs on its own thread and is the only place the signals in `signals` are
// handled: they are blocked in every thread and collected here with sigwait(),
// so the handling code may take locks and call into gRPC, which a signal
// handler may not. Returns once shutdown is complete.
void HandleSignals(sigset_t signals, std::chrono::milliseconds drain, grpc::Server* server,
                   BackendState* state, std::function<void()> before_shutdown) {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    switch (sig) {
      case SIGUSR1:
        state->SetServing(false);
        Log(absl::StrCat(state->name(), ": SIGUSR1, health is now NOT_SERVING"));
        break;
      case SIGUSR2:
        state->SetServing(true);
        Log(absl::StrCat(state->name(), ": SIGUSR2, health is now SERVING"));
        break;
      default: {
        Log(absl::StrCat(state->name(), ": ", sig == SIGINT ? "SIGINT" : "SIGTERM",
                         ", shutting down"));
        // Unblocked in this thread alone, a second SIGINT or SIGTERM gets its
        // default action, so an impatient user can still kill the process.
        sigset_t terminate;
        sigemptyset(&terminate);
        sigaddset(&terminate, SIGINT);
        sigaddset(&terminate, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &terminate, nullptr);
        // Deregistered first, so clients stop picking it before it stops.
        before_shutdown();
        state->ShutdownHealth();
        // gRPC's shutdown cancels the RPCs that have arrived but not yet
        // reached a handler thread, so a client with RPCs in flight sees a few
        // CANCELLED; clients that follow health status avoid them if they have
        // time to see NOT_SERVING first.
        if (drain.count() > 0) std::this_thread::sleep_for(drain);
        server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
        return;
      }
    }
  }
}

// Returns an error message for the first invalid flag, if any.
std::optional<std::string> ValidateFlags() {
  const int32_t port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) return absl::StrCat("--port must be in [0, 65535], not ", port);
  if (absl::GetFlag(FLAGS_host).empty()) return std::string("--host must not be empty");
  if (absl::GetFlag(FLAGS_max_connection_age_ms) < 0) {
    return absl::StrCat("--max_connection_age_ms must be >= 0, not ",
                        absl::GetFlag(FLAGS_max_connection_age_ms));
  }
  if (absl::GetFlag(FLAGS_drain_ms) < 0) {
    return absl::StrCat("--drain_ms must be >= 0, not ", absl::GetFlag(FLAGS_drain_ms));
  }
  if (absl::GetFlag(FLAGS_max_threads) < 4) {
    // The sync server needs a few threads for polling before any RPC runs.
    return absl::StrCat("--max_threads must be >= 4, not ", absl::GetFlag(FLAGS_max_threads));
  }
  // The behaviour flags share the control RPC's checks, and its field names.
  Behavior initial;
  initial.set_delay_ms(absl::GetFlag(FLAGS_delay_ms));
  initial.set_error_rate(absl::GetFlag(FLAGS_error_rate));
  initial.set_error_code(absl::GetFlag(FLAGS_error_code));
  return ValidateBehavior(initial, "--");
}

int Main() {
  if (std::optional<std::string> error = ValidateFlags()) {
    Log(*error);
    return 2;
  }

  // Blocked before gRPC starts any thread, so that every thread inherits the
  // mask and these signals can only be collected by HandleSignals().
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2}) sigaddset(&signals, sig);
  if (int rc = pthread_sigmask(SIG_BLOCK, &signals, nullptr); rc != 0) {
    Log(absl::StrCat("pthread_sigmask: ", strerror(rc)));
    return 1;
  }

  BehaviorSettings initial;
  initial.delay_ms = absl::GetFlag(FLAGS_delay_ms);
  initial.error_rate = absl::GetFlag(FLAGS_error_rate);
  initial.error_code = *StatusCodeFromName(absl::GetFlag(FLAGS_error_code));
  BackendState state(initial);
  GreeterService greeter(&state);
  ControlService control(&state);

  grpc::EnableDefaultHealthCheckService(absl::GetFlag(FLAGS_health_service));
  grpc::ServerBuilder builder;
  // The sync server runs each RPC on its own thread, so an injected delay
  // holds a thread but never delays other RPCs; the quota only bounds how many
  // such threads may pile up.
  grpc::ResourceQuota quota("greeter_server");
  quota.SetMaxThreads(absl::GetFlag(FLAGS_max_threads));
  builder.SetResourceQuota(quota);
  // gRPC sets SO_REUSEPORT by default, so a second server given a busy
  // --port would quietly share it with the first and receive some of its
  // connections: confusing for a backend whose identity is the point.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (const int age = absl::GetFlag(FLAGS_max_connection_age_ms); age > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, age);
    // Calls in flight at the GOAWAY get this long to finish.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 5000);
  }
  const std::string host = absl::GetFlag(FLAGS_host);
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!absl::GetFlag(FLAGS_tls_cert).empty() || !absl::GetFlag(FLAGS_tls_key).empty()) {
    std::string cert, key, client_ca;
    for (auto [flag, path, out] :
         {std::tuple{"--tls_cert", absl::GetFlag(FLAGS_tls_cert), &cert},
          {"--tls_key", absl::GetFlag(FLAGS_tls_key), &key},
          {"--tls_client_ca", absl::GetFlag(FLAGS_tls_client_ca), &client_ca}}) {
      if (path.empty()) {
        if (out == &client_ca) continue;
        std::cerr << "greeter_server: " << flag << " is required for TLS" << std::endl;
        return 2;
      }
      std::ifstream in(path);
      if (!in) {
        std::cerr << "greeter_server: " << flag << ": cannot read " << path << std::endl;
        return 2;
      }
      std::stringstream text;
      text << in.rdbuf();
      *out = text.str();
    }
    grpc::SslServerCredentialsOptions options(
        client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = client_ca;
    options.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(options);
  }
  builder.AddListeningPort(JoinHostPort(host, absl::GetFlag(FLAGS_port)), credentials,
                           &bound_port);
  builder.RegisterService(&greeter);
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    Log(absl::StrCat("cannot listen on ", JoinHostPort(host, absl::GetFlag(FLAGS_port))));
    return 1;
  }

  std::string name = absl::GetFlag(FLAGS_name);
  if (name.empty()) name = absl::StrCat("server-", bound_port);
  state.SetName(name);
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr && absl::GetFlag(FLAGS_health_service)) {
    Log("gRPC did not create its default health service");
    server->Shutdown();
    return 1;
  }
  if (health != nullptr) {
    // Registers the Greeter's own name so that clients may health-check it
    // by name as well as with ""; SetServingStatus(bool) covers both from
    // now on.
    health->SetServingStatus(Greeter::service_full_name(), true);
    state.AttachHealthService(health);
  }

  std::unique_ptr<lbkit::EtcdRegistration> registration;
  if (!absl::GetFlag(FLAGS_etcd).empty()) {
    lbkit::EtcdRegistration::Options options;
    options.etcd_endpoints = absl::GetFlag(FLAGS_etcd);
    options.prefix = absl::GetFlag(FLAGS_etcd_prefix);
    options.address = JoinHostPort(host, bound_port);
    options.locality = absl::GetFlag(FLAGS_locality);
    options.ttl = std::chrono::seconds(absl::GetFlag(FLAGS_etcd_ttl_s));
    auto started = lbkit::EtcdRegistration::Start(options);
    if (!started.ok()) {
      Log(std::string(started.status().message()));
      server->Shutdown();
      return 2;
    }
    registration = *std::move(started);
    // Serving does not wait for etcd: the registration keeps trying.
    absl::Status registered = registration->WaitRegistered(std::chrono::seconds(5));
    Log(registered.ok() ? absl::StrCat(name, ": registered in etcd as ", registration->key())
                        : std::string(registered.message()));
  }

  std::thread signal_thread(HandleSignals, signals,
                            std::chrono::milliseconds(absl::GetFlag(FLAGS_drain_ms)),
                            server.get(), &state, [&registration] { registration.reset(); });
  Log(absl::StrCat(name, ": ", DescribeBehavior(state.Get().behavior)));
  // The one line on stdout; std::endl flushes it for whoever waits on a pipe.
  std::cout << "listening on " << JoinHostPort(host, bound_port) << std::endl;

  server->Wait();
  signal_thread.join();
  Log(absl::StrCat(name, ": stopped"));
  return 0;
}

}  // namespace
}  // namespace lbkit_examples

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A Greeter backend for trying lbkit's load-balancing policies.\n"
      "Prints 'listening on HOST:PORT' on stdout once it serves. "
      "SIGUSR1/SIGUSR2 set its health to NOT_SERVING/SERVING; SIGTERM/SIGINT stop it.");
  if (std::vector<char*> rest = absl::ParseCommandLine(argc, argv); rest.size() > 1) {
    lbkit_examples::Log(absl::StrCat("unexpected argument \"", rest[1], "\"; see --help"));
    return 2;
  }
  return lbkit_examples::Main();
}
