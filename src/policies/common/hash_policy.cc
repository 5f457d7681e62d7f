#include "policies/common/hash_policy.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "algorithms/random.h"
#include "algorithms/xxhash64.h"
#include "common/endpoint_attributes.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;

class HashPicker : public LoadBalancingPolicy::SubchannelPicker {
 public:
  HashPicker(std::shared_ptr<const HashLookup> lookup,
             std::vector<RefCountedPtr<SubchannelInterface>> subchannels,
             std::vector<uint32_t> ready, std::string header)
      : lookup_(std::move(lookup)),
        subchannels_(std::move(subchannels)),
        ready_(std::move(ready)),
        header_(std::move(header)) {
    is_ready_.assign(subchannels_.size(), 0);
    for (uint32_t e : ready_) is_ready_[e] = 1;
  }

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    const absl::optional<uint64_t> hash = RequestHash(header_, args);
    if (!hash.has_value()) {
      return LoadBalancingPolicy::PickResult::Complete(
          subchannels_[ready_[algorithms::UniformIndex(ready_.size())]]);
    }
    const size_t n = lookup_->positions();
    size_t position = lookup_->Start(*hash);
    // Bounded by the structure's size; a READY endpoint exists (the picker
    // is only built then), so the walk ends at the latest after one lap.
    for (size_t step = 0; step < n; ++step) {
      const uint32_t e = lookup_->EndpointAt(position);
      if (is_ready_[e]) return LoadBalancingPolicy::PickResult::Complete(subchannels_[e]);
      if (++position == n) position = 0;
    }
    return LoadBalancingPolicy::PickResult::Complete(subchannels_[ready_.front()]);
  }

 private:
  const std::shared_ptr<const HashLookup> lookup_;
  const std::vector<RefCountedPtr<SubchannelInterface>> subchannels_;  // by endpoint index
  const std::vector<uint32_t> ready_;
  std::vector<uint8_t> is_ready_;
  const std::string header_;
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

absl::optional<uint64_t> RequestHash(const std::string& header,
                                     LoadBalancingPolicy::PickArgs args) {
  if (header.empty()) return algorithms::ThreadRandom();
  if (args.initial_metadata == nullptr) return absl::nullopt;
  std::string buffer;
  absl::optional<absl::string_view> value = args.initial_metadata->Lookup(header, &buffer);
  if (!value.has_value()) return absl::nullopt;
  return algorithms::Xxh64(std::string_view(value->data(), value->size()));
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
      weights.push_back(EndpointWeight(e->address()));
    }
    lookup = BuildLookup(keys, weights);
    if (!retained_only) lookup_ = lookup;
  }
  std::vector<RefCountedPtr<SubchannelInterface>> subchannels;
  std::vector<uint32_t> ready_indices;
  for (size_t i = 0; i < all.size(); ++i) {
    subchannels.push_back(all[i]->subchannel());
    if (all[i]->state() == GRPC_CHANNEL_READY) ready_indices.push_back(static_cast<uint32_t>(i));
  }
  return std::make_unique<HashPicker>(std::move(lookup), std::move(subchannels),
                                      std::move(ready_indices), hash_header());
}

}  // namespace lbkit::policies
