#include "tests/support/etcd_process.h"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "resolvers/etcd/etcd_client.h"

extern char** environ;

namespace lbkit::testing {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  fprintf(stderr, "EtcdCluster: %s\n", message.c_str());
  abort();
}

// A port nothing listens on now (the kernel's pick for port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Fail(absl::StrCat("cannot find a free port: ", strerror(errno)));
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool Listening(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::unique_ptr<etcd::BlockingClient> ClientFor(const std::string& endpoint) {
  auto channel = etcd::CreateEtcdChannel(endpoint);
  if (!channel.ok()) Fail(std::string(channel.status().message()));
  return std::make_unique<etcd::BlockingClient>(*channel);
}

}  // namespace

std::unique_ptr<EtcdCluster> EtcdCluster::Start(int members) {
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  std::vector<std::string> peers;
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.client_port = FreePort();
    m.peer_port = FreePort();
    peers.push_back(absl::StrCat(m.name, "=http://127.0.0.1:", m.peer_port));
    cluster->members_.push_back(m);
  }
  cluster->initial_cluster_ = absl::StrJoin(peers, ",");
  for (int i = 0; i < members; ++i) cluster->Spawn(i);
  for (int i = 0; i < members; ++i) cluster->WaitReady(i);
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::string EtcdCluster::endpoints() const {
  std::vector<std::string> all;
  for (int i = 0; i < size(); ++i) all.push_back(endpoint(i));
  return absl::StrJoin(all, ",");
}

void EtcdCluster::Spawn(int i) {
  Member& m = members_[i];
  const std::string client = absl::StrCat("http://127.0.0.1:", m.client_port);
  const std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
  // Raft timings: fast enough that a leader change takes well under a
  // second, slow enough not to flap on a loaded 2-core machine. The lease
  // minimum becomes 1 s (1.5 election timeouts, rounded up).
  std::vector<std::string> args = {
      "/usr/bin/etcd", "--name", m.name, "--data-dir", dir_.path() + "/" + m.name,
      "--listen-client-urls", client, "--advertise-client-urls", client,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", initial_cluster_, "--initial-cluster-state", "new",
      "--initial-cluster-token", "lbkit-test", "--heartbeat-interval", "50",
      "--election-timeout", "500", "--logger", "zap", "--log-outputs",
      dir_.path() + "/" + m.name + ".log", "--log-level", "error"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    Fail(absl::StrCat("posix_spawn /usr/bin/etcd: ", strerror(rc),
                      " (scripts/bootstrap.sh installs etcd-server)"));
  }
  m.pid = pid;
}

void EtcdCluster::WaitReady(int i) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // TCP first: a gRPC channel that dials too early backs off for a second.
  while (!Listening(members_[i].client_port)) {
    if (std::chrono::steady_clock::now() > deadline) {
      Fail(absl::StrCat("etcd member ", i, " does not listen after 30 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto client = ClientFor(endpoint(i));
  for (;;) {
    etcdpb::RangeRequest request;
    request.set_key("lbkit-ready");
    etcdpb::RangeResponse response;
    if (client->Call(etcd::kRangeMethod, request, &response, std::chrono::milliseconds(2000))
            .ok()) {
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      Fail(absl::StrCat("etcd member ", i, " does not answer after 30 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

void EtcdCluster::Restart(int i) {
  Kill(i);
  Spawn(i);
  WaitReady(i);
}

int EtcdCluster::Running(int via) const {
  if (via >= 0) return via;
  for (int i = 0; i < size(); ++i) {
    if (members_[i].pid > 0) return i;
  }
  Fail("no etcd member is running");
}

void EtcdCluster::Put(const std::string& key, const std::string& value, int via) {
  etcdpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  etcdpb::PutResponse response;
  auto status = ClientFor(endpoint(Running(via)))
                    ->Call(etcd::kPutMethod, request, &response, std::chrono::seconds(10));
  if (!status.ok()) Fail(absl::StrCat("put ", key, ": ", status.error_message()));
}

void EtcdCluster::Delete(const std::string& key, int via) {
  etcdpb::DeleteRangeRequest request;
  request.set_key(key);
  etcdpb::DeleteRangeResponse response;
  auto status = ClientFor(endpoint(Running(via)))
                    ->Call(etcd::kDeleteRangeMethod, request, &response, std::chrono::seconds(10));
  if (!status.ok()) Fail(absl::StrCat("delete ", key, ": ", status.error_message()));
}

std::map<std::string, std::string> EtcdCluster::List(const std::string& prefix, int via) {
  etcdpb::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(etcd::PrefixEnd(prefix));
  etcdpb::RangeResponse response;
  auto status = ClientFor(endpoint(Running(via)))
                    ->Call(etcd::kRangeMethod, request, &response, std::chrono::seconds(10));
  if (!status.ok()) Fail(absl::StrCat("list ", prefix, ": ", status.error_message()));
  std::map<std::string, std::string> out;
  for (const auto& kv : response.kvs()) out[kv.key()] = kv.value();
  return out;
}

int64_t EtcdCluster::CompactAll(int via) {
  auto client = ClientFor(endpoint(Running(via)));
  etcdpb::RangeRequest range;
  range.set_key("lbkit-revision");
  etcdpb::RangeResponse current;
  auto status = client->Call(etcd::kRangeMethod, range, &current, std::chrono::seconds(10));
  if (!status.ok()) Fail(absl::StrCat("range: ", status.error_message()));
  etcdpb::CompactionRequest request;
  request.set_revision(current.header().revision());
  request.set_physical(true);
  etcdpb::CompactionResponse response;
  status = client->Call(etcd::kCompactMethod, request, &response, std::chrono::seconds(10));
  if (!status.ok()) Fail(absl::StrCat("compact: ", status.error_message()));
  return current.header().revision();
}

}  // namespace lbkit::testing
