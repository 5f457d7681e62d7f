// lbkit::DumpState(), lbkit::PrometheusText() and the admin HTTP server
// (civetweb from Debian), which serves both on 127.0.0.1.

#include <civetweb.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "lbkit/stats.h"
#include "stats/stats.h"

namespace lbkit {

namespace {

int Reply(mg_connection* conn, const char* content_type, const std::string& body) {
  const std::string head = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: ", content_type,
                                        "\r\nContent-Length: ", body.size(),
                                        "\r\nConnection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

int HandleMetrics(mg_connection* conn, void*) {
  return Reply(conn, "text/plain; version=0.0.4; charset=utf-8", stats::Prometheus());
}

int HandleState(mg_connection* conn, void*) {
  return Reply(conn, "application/json", stats::DumpJson());
}

}  // namespace

std::string DumpState() { return stats::DumpJson(); }
std::string PrometheusText() { return stats::Prometheus(); }

class AdminServer::Impl {
 public:
  mg_context* context = nullptr;  // civetweb's server
  int port = 0;
};

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("admin port must be in [0, 65535], not ", port));
  }
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  const std::string listen = absl::StrCat("127.0.0.1:", port);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  mg_context* ctx = mg_start(&callbacks, nullptr, options);
  if (ctx == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("lbkit admin server: cannot listen on ", listen, " (port in use?)"));
  }
  mg_set_request_handler(ctx, "/metrics$", HandleMetrics, nullptr);
  mg_set_request_handler(ctx, "/lbkit/state$", HandleState, nullptr);
  mg_server_port ports[1];
  auto impl = std::make_unique<Impl>();
  impl->context = ctx;
  impl->port = mg_get_server_ports(ctx, 1, ports) == 1 ? ports[0].port : port;
  std::unique_ptr<AdminServer> server(new AdminServer(std::move(impl)));
  return server;
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

int AdminServer::port() const { return impl_->port; }

AdminServer::~AdminServer() {
  if (impl_->context != nullptr) mg_stop(impl_->context);
}

}  // namespace lbkit
