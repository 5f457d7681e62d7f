#include "policies/common/hash_policy.h"

#include <algorithm>
#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/types/optional.h"
#include "algorithms/bounded_load.h"
#include "algorithms/random.h"
#include "algorithms/xxhash64.h"
#include "common/server_address_attributes.h"
#include "policies/common/call_counter.h"
#include "policies/common/serving_count.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;

}  // namespace

// Bounded load's count of an endpoint's calls in flight, and the policy's
// total they also count into (kept alive by every endpoint's data).
struct BoundedLoadData : public CallCountedData {
  static constexpr char kKind = 0;
  explicit BoundedLoadData(std::shared_ptr<std::atomic<int64_t>> total)
      : CallCountedData(&kKind), total_in_flight(std::move(total)) {}
  const std::shared_ptr<std::atomic<int64_t>> total_in_flight;
};

namespace {

// With hashBalanceFactor, counts the call against its endpoint and the
// policy's total from pick to end (the channel destroys the tracker exactly
// once per picked call, however it ends). Hooks of the call counter
// (call_counter.h): it lives inside the call's one tracker.
class BoundedLoadHooks {
 public:
  explicit BoundedLoadHooks(BoundedLoadData* data) : data_(data) {
    data_->CallPicked();
    data_->total_in_flight->fetch_add(1, std::memory_order_relaxed);
  }
  BoundedLoadHooks(BoundedLoadHooks&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  BoundedLoadHooks& operator=(BoundedLoadHooks&&) = delete;
  ~BoundedLoadHooks() {
    if (data_ == nullptr) return;  // moved from
    data_->total_in_flight->fetch_sub(1, std::memory_order_relaxed);
    data_->CallEnded();  // last: it may free the data
  }
  void Start() {}
  void Finish(const SubchannelCallTracker::FinishArgs&) {}

 private:
  BoundedLoadData* data_;
};

class HashPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  // `endpoints` by lookup index; `ready` the indices of the READY ones.
  // `total_in_flight` is non-null when bounded load is on.
  HashPicker(std::shared_ptr<const HashLookup> lookup, std::vector<Endpoint*> endpoints,
             std::vector<uint32_t> ready, std::string header, bool use_source_ip,
             uint32_t balance_factor, std::shared_ptr<std::atomic<int64_t>> total_in_flight)
      : lookup_(std::move(lookup)),
        ready_(std::move(ready)),
        header_(std::move(header)),
        client_hash_(use_source_ip ? absl::optional<uint64_t>(ClientHash()) : absl::nullopt),
        total_in_flight_(std::move(total_in_flight)) {
    candidate_of_.assign(endpoints.size(), kNotReady);
    std::vector<uint32_t> ready_weights;
    for (size_t c = 0; c < ready_.size(); ++c) {
      candidate_of_[ready_[c]] = static_cast<uint32_t>(c);
      ready_weights.push_back(internal::EndpointWeight(endpoints[ready_[c]]->address()));
    }
    for (Endpoint* e : endpoints) {
      subchannels_.push_back(e->subchannel());
      endpoints_.push_back(e->Ref());
      stats_.push_back(e->stats().get());  // kept alive by endpoints_
      // Checked once here, not on every pick.
      data_.push_back(&e->data<BoundedLoadData>());
    }
    if (total_in_flight_ != nullptr) bounded_.emplace(balance_factor, ready_weights);
  }

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    absl::optional<uint64_t> hash = client_hash_.has_value() ? client_hash_ : RequestHash(header_, args);
    uint32_t e;
    if (hash.has_value()) {
      e = Walk(*hash);
    } else {
      e = ready_[algorithms::UniformIndex(ready_.size())];
      hash = algorithms::ThreadRandom();
    }
    if (!bounded_.has_value()) {
      return LoadBalancingPolicy::PickResult::Complete(
          subchannels_[e], CountCall(stats_[e]));
    }
    const size_t c = bounded_->Choose(
        *hash, candidate_of_[e], total_in_flight_->load(std::memory_order_relaxed),
        [this](size_t c) {
          return data_[ready_[c]]->in_flight();
        });
    e = ready_[c];
    return LoadBalancingPolicy::PickResult::Complete(
        subchannels_[e],
        CountCall(Counted(stats_[e]), BoundedLoadHooks(data_[e])));
  }
  std::optional<size_t> ServingEndpoints() const override { return ready_.size(); }

 private:
  static constexpr uint32_t kNotReady = UINT32_MAX;

  // The first READY endpoint from the hash's position on.
  uint32_t Walk(uint64_t hash) const {
    const size_t n = lookup_->positions();
    size_t position = lookup_->Start(hash);
    // Bounded by the structure's size; a READY endpoint exists (the picker
    // is only built then), so the walk ends at the latest after one lap.
    for (size_t step = 0; step < n; ++step) {
      const uint32_t e = lookup_->EndpointAt(position);
      if (candidate_of_[e] != kNotReady) return e;
      if (++position == n) position = 0;
    }
    return ready_.front();
  }

  const std::shared_ptr<const HashLookup> lookup_;
  std::vector<RefCountedPtr<SubchannelInterface>> subchannels_;  // by endpoint index
  std::vector<RefCountedPtr<Endpoint>> endpoints_;               // by endpoint index
  std::vector<stats::EndpointStats*> stats_;                      // by endpoint index
  std::vector<BoundedLoadData*> data_;  // by endpoint index; kept by endpoints_
  const std::vector<uint32_t> ready_;
  std::vector<uint32_t> candidate_of_;  // endpoint index -> index in ready_
  const std::string header_;
  const absl::optional<uint64_t> client_hash_;
  const std::shared_ptr<std::atomic<int64_t>> total_in_flight_;
  absl::optional<algorithms::BoundedLoad> bounded_;
};

}  // namespace

void ValidateHashHeader(std::string* header, grpc_core::ValidationErrors* errors) {
  absl::AsciiStrToLower(header);
  if (header->empty()) return;
  if (absl::StartsWith(*header, ":")) {
    errors->AddError("must not be a pseudo-header");
  } else if (absl::EndsWith(*header, "-bin")) {
    errors->AddError("must not be a binary (-bin) header");
  } else {
    for (char c : *header) {
      if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) {
        errors->AddError("is not a valid header name");
        break;
      }
    }
  }
}

void ValidateHashBalanceFactor(uint32_t factor, grpc_core::ValidationErrors* errors) {
  if (factor != 0 && factor < 100) {
    errors->AddError("must be at least 100 (a percentage of the mean load), or 0 for off");
  }
}

void ValidateHashFields(std::string* header, bool use_source_ip, uint32_t balance_factor,
                        grpc_core::ValidationErrors* errors) {
  {
    grpc_core::ValidationErrors::ScopedField field(errors, ".requestHashHeader");
    if (!errors->FieldHasErrors()) ValidateHashHeader(header, errors);
  }
  if (use_source_ip && !header->empty()) {
    grpc_core::ValidationErrors::ScopedField field(errors, ".useSourceIp");
    errors->AddError("hashes the client, requestHashHeader the call: set one of them");
  }
  grpc_core::ValidationErrors::ScopedField field(errors, ".hashBalanceFactor");
  if (!errors->FieldHasErrors()) ValidateHashBalanceFactor(balance_factor, errors);
}

uint64_t ClientHash() {
  static const uint64_t hash = [] {
    char name[HOST_NAME_MAX + 1] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
      // No name: still one key for the whole process.
      return algorithms::ThreadRandom();
    }
    return algorithms::Xxh64(std::string_view(name));
  }();
  return hash;
}

absl::optional<uint64_t> RequestHash(const std::string& header,
                                     LoadBalancingPolicy::PickArgs args) {
  if (header.empty()) return algorithms::ThreadRandom();
  if (args.initial_metadata == nullptr) return absl::nullopt;
  std::string buffer;
  absl::optional<absl::string_view> value = args.initial_metadata->Lookup(header, &buffer);
  if (!value.has_value()) return absl::nullopt;
  return algorithms::Xxh64(std::string_view(value->data(), value->size()));
}

std::unique_ptr<EndpointData> HashPolicy::MakeEndpointData() {
  return std::make_unique<BoundedLoadData>(total_in_flight_);
}

std::unique_ptr<LoadBalancingPolicy::SubchannelPicker> HashPolicy::MakeReadyPicker(
    const std::vector<Endpoint*>& ready) {
  // Normally the structure covers every current endpoint, READY or not, so
  // that a key keeps its place while others flap. While only endpoints an
  // update replaced are READY, it covers those alone, once.
  const bool retained_only = !ready.empty() && endpoints().num_ready() == 0;
  std::vector<Endpoint*> all;
  if (retained_only) {
    all = ready;
  } else {
    for (const auto& e : endpoints().endpoints()) all.push_back(e.get());
  }
  std::shared_ptr<const HashLookup> lookup = retained_only ? nullptr : lookup_;
  if (lookup == nullptr) {
    std::vector<std::string> keys;
    std::vector<uint32_t> weights;
    for (Endpoint* e : all) {
      keys.push_back(e->address_text());
      weights.push_back(internal::EndpointWeight(e->address()));
    }
    lookup = BuildLookup(keys, weights);
    if (!retained_only) lookup_ = lookup;
  }
  std::vector<uint32_t> ready_indices;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i]->state() == GRPC_CHANNEL_READY) ready_indices.push_back(static_cast<uint32_t>(i));
  }
  const uint32_t factor = hash_balance_factor();
  return std::make_unique<HashPicker>(std::move(lookup), std::move(all), std::move(ready_indices),
                                      hash_header(), use_source_ip(), factor,
                                      factor == 0 ? nullptr : total_in_flight_);
}

}  // namespace lbkit::policies
