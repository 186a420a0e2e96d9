#include "host/net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace tally::net {
namespace {

std::string openssl_error(std::string_view what) {
  std::string msg(what);
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += ": ";
    msg += buf;
  }
  return msg;
}

class TlsFilter final : public ConnFilter {
 public:
  TlsFilter(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
    TALLY_ASSERT_MSG(ssl_ != nullptr, "SSL_new failed");
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    TALLY_ASSERT_MSG(rbio != nullptr && wbio != nullptr, "BIO_new failed");
    BIO_set_mem_eof_return(rbio, -1);  // an empty input BIO means "more later", not end of file
    SSL_set_bio(ssl_, rbio, wbio);     // ssl_ owns both
    rbio_ = rbio;
    wbio_ = wbio;
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
      SSL_do_handshake(ssl_);  // the ClientHello waits in wbio_
    }
  }
  ~TlsFilter() override { SSL_free(ssl_); }

  bool input(std::string_view wire, std::string& plain) override {
    if (failed_) return false;
    while (!wire.empty()) {
      const int n = BIO_write(rbio_, wire.data(), static_cast<int>(std::min<size_t>(wire.size(), 1 << 30)));
      if (n <= 0) return fail();
      wire.remove_prefix(static_cast<size_t>(n));
    }
    if (!SSL_is_init_finished(ssl_)) {
      const int r = SSL_do_handshake(ssl_);
      if (r <= 0) {
        const int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
        return fail();
      }
    }
    char buf[16384];  // a record's worth
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        plain.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
      if (err == SSL_ERROR_ZERO_RETURN) {
        // The peer's close_notify: answer it and close once everything is out.
        SSL_shutdown(ssl_);
        return false;
      }
      return fail();
    }
  }

  bool output(std::string& plain, std::string& wire) override {
    if (!failed_ && !plain.empty() && SSL_is_init_finished(ssl_)) {
      size_t done = 0;
      while (done < plain.size()) {
        const int n = SSL_write(ssl_, plain.data() + done, static_cast<int>(std::min<size_t>(plain.size() - done, 1 << 30)));
        if (n <= 0) {
          fail();
          break;
        }
        done += static_cast<size_t>(n);
      }
      plain.clear();
    }
    drain(wire);
    return !failed_;
  }

  bool has_output() const override { return BIO_ctrl_pending(wbio_) > 0; }

  std::string describe() const override {
    return SSL_is_init_finished(ssl_) ? std::string(SSL_get_version(ssl_)) : std::string();
  }

 private:
  bool fail() {
    failed_ = true;
    ERR_clear_error();  // this connection's errors must not reach another's
    return false;
  }

  void drain(std::string& wire) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(wbio_, &data);
    if (n > 0) {
      wire.append(data, static_cast<size_t>(n));
      (void)BIO_reset(wbio_);
    }
  }

  SSL* ssl_;
  BIO* rbio_ = nullptr;
  BIO* wbio_ = nullptr;
  bool failed_ = false;
};

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& opts) {
  std::shared_ptr<TlsContext> t(new TlsContext());
  t->server_ = opts.server;
  t->ctx_ = SSL_CTX_new(opts.server ? TLS_server_method() : TLS_client_method());
  if (t->ctx_ == nullptr) return Status::internal(openssl_error("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
  if (!opts.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(t->ctx_, opts.cert_file.c_str()) != 1) {
      return Status::invalid(openssl_error("tls-cert-file " + opts.cert_file));
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx_, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Status::invalid(openssl_error("tls-key-file " + opts.key_file));
    }
    if (SSL_CTX_check_private_key(t->ctx_) != 1) {
      return Status::invalid(openssl_error("tls-key-file " + opts.key_file + " does not match tls-cert-file"));
    }
  } else if (opts.server) {
    return Status::invalid("TLS needs tls-cert-file and tls-key-file");
  }
  if (!opts.ca_cert_file.empty()) {
    if (SSL_CTX_load_verify_locations(t->ctx_, opts.ca_cert_file.c_str(), nullptr) != 1) {
      return Status::invalid(openssl_error("tls-ca-cert-file " + opts.ca_cert_file));
    }
  }
  if (opts.server) {
    int mode = SSL_VERIFY_NONE;
    if (opts.auth_clients == "yes") {
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    } else if (opts.auth_clients == "optional") {
      mode = SSL_VERIFY_PEER;
    } else if (opts.auth_clients != "no") {
      return Status::invalid("tls-auth-clients must be yes, no or optional, not '" + opts.auth_clients + "'");
    }
    if (mode != SSL_VERIFY_NONE && opts.ca_cert_file.empty()) {
      return Status::invalid("tls-auth-clients " + opts.auth_clients + " needs tls-ca-cert-file");
    }
    SSL_CTX_set_verify(t->ctx_, mode, nullptr);
    // No session tickets or cache across shards: every connection does a full handshake.
    SSL_CTX_set_session_cache_mode(t->ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(t->ctx_, 0);
  } else {
    SSL_CTX_set_verify(t->ctx_, opts.ca_cert_file.empty() ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  }
  return t;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<ConnFilter> TlsContext::new_filter() const { return std::make_unique<TlsFilter>(ctx_, server_); }

}  // namespace tally::net
