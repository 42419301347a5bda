#include "netadapter/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace warren {

namespace ssl = boost::asio::ssl;

namespace {

// Any certificate the client shows is accepted: Warren identifies a client by the
// certificate's fingerprint (registered with an account), not by who signed it.
int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

std::string openssl_error(const std::string& what, const boost::system::error_code& ec) {
    std::string out = what + ": " + ec.message();
    if (unsigned long e = ERR_get_error(); e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += " (";
        out += buf;
        out += ")";
    }
    ERR_clear_error();
    return out;
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const TlsOptions& options, std::string& error) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                     ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    int min = options.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(native, min) != 1) {
        error = "cannot set the minimum TLS version";
        return nullptr;
    }
    // Renegotiation is a cost a client could make the server pay again and again.
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
    // An idle connection gives its read and write buffers back (~34 KiB each otherwise).
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(options.cert_file, ec);
    if (ec) {
        error = openssl_error("cannot load the certificate " + options.cert_file, ec);
        return nullptr;
    }
    ctx->use_private_key_file(options.key_file, ssl::context::pem, ec);
    // Asio has taken the error off the queue: its code is the packed OpenSSL error.
    if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        error = "the key " + options.key_file + " does not match the certificate " +
                options.cert_file;
        return nullptr;
    }
    if (ec) {
        error = openssl_error("cannot load the key " + options.key_file, ec);
        return nullptr;
    }
    if (SSL_CTX_check_private_key(native) != 1) {
        ERR_clear_error();
        error = "the key " + options.key_file + " does not match the certificate " +
                options.cert_file;
        return nullptr;
    }
    if (options.client_certificates)
        SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_certificate);
    return ctx;
}

std::string peer_fingerprint(SSL* ssl) {
    X509* cert = SSL_get_peer_certificate(ssl);
    if (!cert) return {};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    bool ok = X509_digest(cert, EVP_sha256(), md, &n) == 1;
    X509_free(cert);
    if (!ok) return {};
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned int i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

}  // namespace warren
