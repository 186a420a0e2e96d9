// TLS for reactor connections, in user space with OpenSSL over memory BIOs: the reactor hands the filter
// the bytes it received and gets plaintext back for the handler; before a send it hands over what the
// handler wrote and gets TLS records (plus any handshake bytes the filter owes the peer). The socket and
// its io_uring or epoll path stay as they are. (kTLS, which would move record encryption into the kernel
// after the handshake, is not used yet.)
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "host/common/status.h"
#include "host/net/reactor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace tally::net {

struct TlsOptions {
  std::string cert_file;     // PEM certificate chain of this end
  std::string key_file;      // PEM private key
  std::string ca_cert_file;  // PEM CAs that sign the other end's certificate (empty: none)
  // Server side: "yes" (a client certificate signed by the CA is required), "optional" (checked when
  // given) or "no". Client side: the server's certificate is always checked against the CA when one is set.
  std::string auth_clients = "yes";
  bool server = true;
};

// One SSL_CTX, shared by every connection of every shard (OpenSSL's contexts are thread-safe once set
// up); each connection gets its own filter.
class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& opts);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A filter for one new connection (server or client side, as the options say).
  std::unique_ptr<ConnFilter> new_filter() const;

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  bool server_ = true;
};

}  // namespace tally::net
