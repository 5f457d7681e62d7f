// A throw-away certificate authority for TLS tests, made at test time with
// the openssl command: a CA, a server certificate for "greeter.lbkit.test"
// and 127.0.0.1, and a client certificate (for mTLS), valid for two days.

#ifndef LBKIT_TESTS_SUPPORT_TEST_CERTS_H_
#define LBKIT_TESTS_SUPPORT_TEST_CERTS_H_

#include <grpcpp/security/credentials.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_files.h"

namespace lbkit::testing {

inline constexpr char kTlsServerName[] = "greeter.lbkit.test";

class TestCerts {
 public:
  // Aborts the test binary if openssl fails: no TLS test can run without.
  TestCerts() {
    const std::string& d = dir_.path();
    const std::string quiet = " >/dev/null 2>&1";
    const std::string script = absl::StrCat(
        "cd '", d, "' && ",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=lbkit-test-ca", quiet, " && ",
        "printf 'subjectAltName=DNS:", kTlsServerName, ",IP:127.0.0.1\\n' > server.ext && ",
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=",
        kTlsServerName, quiet, " && ",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile server.ext", quiet, " && ",
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
        "-subj /CN=lbkit-test-client", quiet, " && ",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2", quiet);
    if (std::system(script.c_str()) != 0) {
      fprintf(stderr, "TestCerts: openssl failed in %s\n", d.c_str());
      abort();
    }
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Read(const std::string& name) const {
    std::ifstream in(path(name));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // greeter_server flags for TLS (and, with `mutual`, required client
  // certificates from this CA).
  std::vector<std::string> ServerFlags(bool mutual) const {
    std::vector<std::string> flags = {"--tls_cert=" + path("server.pem"),
                                      "--tls_key=" + path("server.key")};
    if (mutual) flags.push_back("--tls_client_ca=" + path("ca.pem"));
    return flags;
  }

  // Client credentials trusting this CA (with the client certificate when
  // `mutual`).
  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(bool mutual) const {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = Read("ca.pem");
    if (mutual) {
      options.pem_cert_chain = Read("client.pem");
      options.pem_private_key = Read("client.key");
    }
    return grpc::SslCredentials(options);
  }

 private:
  TempDir dir_;
};

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_TEST_CERTS_H_
