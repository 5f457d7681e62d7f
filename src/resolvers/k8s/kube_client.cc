#include "resolvers/k8s/kube_client.h"

#include <curl/curl.h>

#include <cstddef>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace lbkit::resolvers::k8s {

namespace {

absl::once_flag g_curl_once;

void InitCurl() {
  absl::call_once(g_curl_once, []() { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* easy = nullptr;
  const std::function<bool(absl::string_view)>* on_bytes = nullptr;
  KubeClient::Response* response = nullptr;
  long status = -1;
};

size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (transfer->status < 0) {
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->status);
  }
  if (transfer->on_bytes != nullptr && transfer->status == 200) {
    if (!(*transfer->on_bytes)(absl::string_view(data, n))) return 0;
  } else if (transfer->response->body.size() < (64u << 20)) {
    transfer->response->body.append(data, n);
  } else {
    return 0;  // a body this size is not the API server talking
  }
  return n;
}

curl_blob Blob(const std::string& data) {
  return curl_blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
}

}  // namespace

Canceller::Canceller() {
  InitCurl();
  multi_ = curl_multi_init();
}

Canceller::~Canceller() { curl_multi_cleanup(static_cast<CURLM*>(multi_)); }

void Canceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

bool Canceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Canceller::Sleep(std::chrono::milliseconds delay) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_; };
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(delay));
  return !cancelled_;
}

KubeClient::KubeClient(KubeCredentials credentials) : credentials_(std::move(credentials)) {
  InitCurl();
}

KubeClient::Response KubeClient::Get(const std::string& path_and_query, Canceller* cancel,
                                     std::chrono::seconds timeout) const {
  return Perform(path_and_query, nullptr, timeout, cancel);
}

KubeClient::Response KubeClient::Stream(const std::string& path_and_query,
                                        const std::function<bool(absl::string_view)>& on_bytes,
                                        std::chrono::seconds timeout, Canceller* cancel) const {
  return Perform(path_and_query, &on_bytes, timeout, cancel);
}

KubeClient::Response KubeClient::Perform(const std::string& path_and_query,
                                         const std::function<bool(absl::string_view)>* on_bytes,
                                         std::chrono::seconds timeout, Canceller* cancel) const {
  Response response;
  // The token file is read for every request: the kubelet rotates bound
  // service-account tokens (about hourly) by replacing the file.
  std::string token = credentials_.token;
  if (!credentials_.token_file.empty()) {
    std::ifstream in(credentials_.token_file);
    std::ostringstream text;
    text << in.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(text.str()));
    if (!in || token.empty()) {
      response.transport = absl::UnauthenticatedError(
          absl::StrCat("cannot read the token file ", credentials_.token_file));
      return response;
    }
  }
  std::unique_ptr<CURL, void (*)(CURL*)> easy(curl_easy_init(), curl_easy_cleanup);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!token.empty()) {
    headers = curl_slist_append(headers, absl::StrCat("Authorization: Bearer ", token).c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);
  Transfer transfer{easy.get(), on_bytes, &response};
  CURL* e = easy.get();
  const std::string url = absl::StrCat(credentials_.server, path_and_query);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "lbkit-k8s/0.1");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count() * 1000));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // gzip when the server offers it
  if (!credentials_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, credentials_.ca_file.c_str());
  curl_blob ca = Blob(credentials_.ca_data), cert = Blob(credentials_.client_cert_data),
            key = Blob(credentials_.client_key_data);
  if (!credentials_.ca_data.empty()) curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
  if (credentials_.insecure_skip_tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!credentials_.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, credentials_.client_cert_file.c_str());
  }
  if (!credentials_.client_cert_data.empty()) curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
  if (!credentials_.client_key_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, credentials_.client_key_file.c_str());
  }
  if (!credentials_.client_key_data.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);

  auto* multi = static_cast<CURLM*>(cancel->multi());
  curl_multi_add_handle(multi, e);
  CURLcode result = CURLE_OK;
  bool finished = false;
  while (!finished && !cancel->cancelled()) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg == CURLMSG_DONE && message->easy_handle == e) {
        result = message->data.result;
        finished = true;
      }
    }
    if (!finished) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  curl_multi_remove_handle(multi, e);
  if (!finished) {
    response.transport = absl::CancelledError("cancelled");
    return response;
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &response.status);
  if (result != CURLE_OK) {
    response.transport = absl::UnavailableError(
        absl::StrCat(credentials_.server, ": ", curl_easy_strerror(result)));
  }
  return response;
}

}  // namespace lbkit::resolvers::k8s
