// A real etcd (Debian's etcd-server, /usr/bin/etcd) for lbkit-etcd's tests:
// one member or a cluster on 127.0.0.1, each member with its own temporary
// data directory, fast raft timings, killed and removed with the object.
// Members can be SIGKILLed and restarted on the same ports and data.
// Helpers read and write keys through lbkit's own etcd client.

#ifndef LBKIT_TESTS_SUPPORT_ETCD_PROCESS_H_
#define LBKIT_TESTS_SUPPORT_ETCD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_files.h"

namespace lbkit::testing {

class EtcdCluster {
 public:
  // Starts `members` members and waits (at most 30 s) until the cluster
  // answers a read; aborts the test binary with a message otherwise.
  static std::unique_ptr<EtcdCluster> Start(int members = 1);
  ~EtcdCluster();

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT" of member i's client URL.
  std::string endpoint(int i) const;
  // Every member's, comma-separated (what an lbkit-etcd URI takes).
  std::string endpoints() const;

  void Kill(int i);
  // Starts a killed member again, same ports and data, and waits until it
  // answers.
  void Restart(int i);

  // Through member `via` (-1: the first one running). Abort on failure.
  void Put(const std::string& key, const std::string& value, int via = -1);
  void Delete(const std::string& key, int via = -1);
  // Compacts up to the current revision; returns it.
  int64_t CompactAll(int via = -1);
  std::map<std::string, std::string> List(const std::string& prefix, int via = -1);

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };
  EtcdCluster() = default;
  void Spawn(int i);
  void WaitReady(int i);
  int Running(int via) const;

  TempDir dir_;
  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_ETCD_PROCESS_H_
