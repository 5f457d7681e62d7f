// A fake name service for lbkit's resolvers (resolvers::SetHostLookupForTesting):
// while installed, every name (IP literals aside) resolves to the IPv4
// address the test gives it, or fails as unknown; a name can be made to fail, or to block until the test releases it
// (to show that no resolver waits for a lookup on gRPC's WorkSerializer).
// State is process-wide and outlives a test: a resolver thread can still be
// looking a name up after the test that started it has ended.

#ifndef LBKIT_TESTS_SUPPORT_FAKE_NAMES_H_
#define LBKIT_TESTS_SUPPORT_FAKE_NAMES_H_

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"

namespace lbkit::testing {

class FakeNames {
 public:
  // Installs the fake for the scope of the object (tests own one).
  FakeNames() { resolvers::SetHostLookupForTesting(&Lookup); }
  ~FakeNames() {
    resolvers::SetHostLookupForTesting(nullptr);
    Release();
    absl::MutexLock lock(&mu());
    state() = State{};
  }

  // `ipv4` may list several addresses, comma-separated.
  void Set(const std::string& name, const std::string& ipv4) {
    absl::MutexLock lock(&mu());
    state().addresses[name] = ipv4;
    state().failing.erase(name);
  }
  void Fail(const std::string& name) {
    absl::MutexLock lock(&mu());
    state().failing.insert(name);
  }
  // Lookups of `name` wait (at most 20 s) until it is released.
  void Block(const std::string& name) {
    absl::MutexLock lock(&mu());
    state().blocked.insert(name);
  }
  void Release(const std::string& name) {
    absl::MutexLock lock(&mu());
    state().blocked.erase(name);
    cv().SignalAll();
  }
  void Release() {
    absl::MutexLock lock(&mu());
    state().blocked.clear();
    cv().SignalAll();
  }
  // Lookups of blocked names that gave up waiting (the test never released
  // them: someone waited for the lookup instead of carrying on).
  int timed_out() {
    absl::MutexLock lock(&mu());
    return state().timed_out;
  }
  // Lookups of `name` so far.
  int lookups(const std::string& name) {
    absl::MutexLock lock(&mu());
    return state().lookups[name];
  }

 private:
  struct State {
    std::map<std::string, std::string> addresses;
    std::set<std::string> failing, blocked;
    std::map<std::string, int> lookups;
    int timed_out = 0;
  };
  static absl::Mutex& mu() {
    static auto* m = new absl::Mutex();
    return *m;
  }
  static absl::CondVar& cv() {
    static auto* c = new absl::CondVar();
    return *c;
  }
  static State& state() {
    static auto* s = new State();
    return *s;
  }

  static absl::StatusOr<std::vector<grpc_resolved_address>> Lookup(const std::string& host,
                                                                    uint16_t port) {
    absl::MutexLock lock(&mu());
    ++state().lookups[host];
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (state().blocked.count(host) != 0) {
      if (cv().WaitWithDeadline(&mu(), deadline)) {
        ++state().timed_out;
        break;
      }
    }
    if (state().failing.count(host) != 0) return absl::UnavailableError("fake DNS: failing");
    auto it = state().addresses.find(host);
    if (it == state().addresses.end()) return absl::NotFoundError("fake DNS: unknown name");
    std::vector<grpc_resolved_address> out;
    for (absl::string_view ip : absl::StrSplit(it->second, ',')) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_port = htons(port);
      inet_pton(AF_INET, std::string(ip).c_str(), &sin.sin_addr);
      grpc_resolved_address address{};
      std::memcpy(address.addr, &sin, sizeof(sin));
      address.len = sizeof(sin);
      out.push_back(address);
    }
    return out;
  }
};

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_FAKE_NAMES_H_
