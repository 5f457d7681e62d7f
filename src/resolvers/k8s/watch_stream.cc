#include "resolvers/k8s/watch_stream.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "resolvers/k8s/kube_objects.h"

namespace lbkit::resolvers::k8s {

absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view line) {
  nlohmann::json parsed = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                                /*allow_exceptions=*/false);
  auto shown = [&]() {
    return absl::StrCat("\"", line.substr(0, 80), line.size() > 80 ? "...\"" : "\"");
  };
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a watch event is not a JSON object: ", shown()));
  }
  auto type = parsed.find("type");
  auto object = parsed.find("object");
  if (type == parsed.end() || !type->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("a watch event has no \"type\": ", shown()));
  }
  if (object == parsed.end() || !object->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("a watch event has no \"object\": ", shown()));
  }
  WatchEvent event;
  const std::string& name = type->get_ref<const std::string&>();
  if (name == "ADDED") {
    event.type = WatchEvent::Type::kAdded;
  } else if (name == "MODIFIED") {
    event.type = WatchEvent::Type::kModified;
  } else if (name == "DELETED") {
    event.type = WatchEvent::Type::kDeleted;
  } else if (name == "BOOKMARK") {
    event.type = WatchEvent::Type::kBookmark;
  } else if (name == "ERROR") {
    event.type = WatchEvent::Type::kError;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("a watch event has the unknown type \"", name.substr(0, 40), "\""));
  }
  event.object = std::move(*object);
  event.resource_version = ObjectResourceVersion(event.object);
  return event;
}

bool WatchStream::Feed(absl::string_view bytes,
                       const std::function<void(absl::StatusOr<WatchEvent>)>& on_event) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    if (newline == absl::string_view::npos) {
      if (partial_.size() + bytes.size() > kMaxLineBytes) {
        partial_.clear();
        on_event(absl::ResourceExhaustedError(
            absl::StrCat("a watch event is longer than ", kMaxLineBytes, " bytes")));
        return false;
      }
      partial_.append(bytes.data(), bytes.size());
      return true;
    }
    absl::string_view line = bytes.substr(0, newline);
    bytes.remove_prefix(newline + 1);
    if (!partial_.empty()) {
      partial_.append(line.data(), line.size());
      line = partial_;
    }
    if (!absl::StripAsciiWhitespace(line).empty()) on_event(ParseWatchEvent(line));
    partial_.clear();
  }
  return true;
}

}  // namespace lbkit::resolvers::k8s
