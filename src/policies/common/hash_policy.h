// What lbkit_ring_hash and lbkit_maglev share: hashing the request header,
// the config field for it, and a policy that keeps its lookup structure (ring
// or table) across picker generations, rebuilding it only when the endpoint
// set changes, never on a health or connectivity flip.
//
// Request hash: XXH64 of the `requestHashHeader` value (several values of the
// header are joined with ","); a call without the header goes to a random
// READY endpoint; without `requestHashHeader` every call gets a random hash.
// When the endpoint a hash lands on is not READY, the lookup walks on (ring
// order, or table order) to the next READY one; the EndpointList keeps every
// endpoint connecting, so the one skipped is asked to connect on the control
// plane, not in the picker.
//
// With `hashBalanceFactor` (bounded load, src/algorithms/bounded_load.h) the
// picker also counts calls in flight per endpoint and for the policy; an
// endpoint over factor/100 x its weighted share of them passes the call on
// to the key's alternates. Without it the pick path counts nothing.

#ifndef LBKIT_POLICIES_COMMON_HASH_POLICY_H_
#define LBKIT_POLICIES_COMMON_HASH_POLICY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/leaf_policy.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/load_balancing/lb_policy.h"

namespace lbkit::policies {

// Validates a requestHashHeader value in place (lower-cased, as gRPC keys
// metadata); errors go to the current field.
void ValidateHashHeader(std::string* header, grpc_core::ValidationErrors* errors);

// Validates a hashBalanceFactor value (0 = off, else >= 100).
void ValidateHashBalanceFactor(uint32_t factor, grpc_core::ValidationErrors* errors);

// The fields both hash policies take: requestHashHeader (lower-cased in
// place), useSourceIp and hashBalanceFactor, each error under its field.
void ValidateHashFields(std::string* header, bool use_source_ip, uint32_t balance_factor,
                        grpc_core::ValidationErrors* errors);

// The request's hash, or nullopt when the header is configured but absent.
absl::optional<uint64_t> RequestHash(const std::string& header,
                                     grpc_core::LoadBalancingPolicy::PickArgs args);

// useSourceIp: the hash of this client, the same for every call of the
// process. Istio hashes the client's IP address; a process sees no address
// of its own that its peers would agree on, so lbkit hashes the host name,
// which in Kubernetes is the pod's name: one backend per client pod, as
// with Istio.
uint64_t ClientHash();

// Picks over a lookup structure built once per endpoint set. `Lookup`
// implementations map a hash to a starting position and walk positions.
class HashLookup {
 public:
  virtual ~HashLookup() = default;
  virtual size_t positions() const = 0;
  virtual size_t Start(uint64_t hash) const = 0;
  virtual uint32_t EndpointAt(size_t position) const = 0;
};

class HashPolicy : public LeafPolicy {
 protected:
  HashPolicy(Args args, absl::string_view name) : LeafPolicy(std::move(args), name) {}

  // Builds the lookup over `keys` ("ip:port") and weights.
  virtual std::shared_ptr<const HashLookup> BuildLookup(
      const std::vector<std::string>& keys, const std::vector<uint32_t>& weights) = 0;
  virtual const std::string& hash_header() const = 0;
  // Every call hashes ClientHash() (Istio's useSourceIp).
  virtual bool use_source_ip() const = 0;
  // 0 = bounded load off.
  virtual uint32_t hash_balance_factor() const = 0;

  // The lookup must be rebuilt (new endpoints or new config).
  void InvalidateLookup() { lookup_.reset(); }

 private:
  void OnEndpointsUpdatedLocked() override { InvalidateLookup(); }
  // Every endpoint gets a BoundedLoadData: hashBalanceFactor can be turned
  // on by a config update while the endpoints stay.
  std::unique_ptr<EndpointData> MakeEndpointData() override;
  std::unique_ptr<SubchannelPicker> MakeReadyPicker(
      const std::vector<Endpoint*>& ready) override;

  std::shared_ptr<const HashLookup> lookup_;
  // Calls in flight across the policy's endpoints, counted by the call
  // trackers of every picker generation while bounded load is on.
  const std::shared_ptr<std::atomic<int64_t>> total_in_flight_ =
      std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_HASH_POLICY_H_
