// TLS for tests over loopback (OpenSSL): a self-signed certificate and key written to PEM
// files, and a line client over TLS with bounded waits (optionally showing a client
// certificate, optionally capped at an old protocol version).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include "tests/loopback.h"

namespace warren::test {

struct CertFiles {
    std::string cert, key;
};

// A P-256 key and a self-signed certificate for `common_name`, valid for a day.
inline CertFiles write_self_signed(const std::string& dir, const std::string& stem,
                                   const std::string& common_name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    if (!key) throw std::runtime_error("EVP_EC_gen failed");
    X509* x = X509_new();
    X509_set_version(x, 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86'400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    // Names a client checks (warren --tls): localhost and 127.0.0.1.
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    if (X509_EXTENSION* san =
            X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1")) {
        X509_add_ext(x, san, -1);
        X509_EXTENSION_free(san);
    }
    X509_sign(x, key, EVP_sha256());
    CertFiles f{dir + "/" + stem + ".crt", dir + "/" + stem + ".key"};
    FILE* c = std::fopen(f.cert.c_str(), "w");
    FILE* k = std::fopen(f.key.c_str(), "w");
    if (!c || !k) throw std::runtime_error("cannot write " + f.cert);
    PEM_write_X509(c, x);
    PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(c);
    std::fclose(k);
    X509_free(x);
    EVP_PKEY_free(key);
    return f;
}

// SHA-256 of a certificate's DER, lowercase hex.
inline std::string fingerprint_of(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509_digest(cert, EVP_sha256(), md, &n);
    std::string out;
    char two[3];
    for (unsigned int i = 0; i < n; ++i) {
        std::snprintf(two, sizeof two, "%02x", md[i]);
        out += two;
    }
    return out;
}

inline std::string fingerprint_of_file(const std::string& pem) {
    FILE* f = std::fopen(pem.c_str(), "r");
    if (!f) throw std::runtime_error("cannot read " + pem);
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    std::string fp = fingerprint_of(x);
    X509_free(x);
    return fp;
}

struct TlsClientOptions {
    const CertFiles* client_cert = nullptr;  // shown to the server when asked
    int max_version = 0;                     // e.g. TLS1_1_VERSION; 0: the library's best
    int timeout_ms = 10'000;                 // for the connect and the handshake
};

class TlsClient {
  public:
    explicit TlsClient(uint16_t port, TlsClientOptions o = {}) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        // Old versions are only reachable if the library allows them at all.
        if (o.max_version) {
            SSL_CTX_set_security_level(ctx_, 0);
            SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
            SSL_CTX_set_max_proto_version(ctx_, o.max_version);
        }
        if (o.client_cert) {
            SSL_CTX_use_certificate_file(ctx_, o.client_cert->cert.c_str(), SSL_FILETYPE_PEM);
            SSL_CTX_use_PrivateKey_file(ctx_, o.client_cert->key.c_str(), SSL_FILETYPE_PEM);
        }
        fd_ = connect_loopback(port);
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        // A blocking handshake, bounded by a receive timeout on the socket.
        timeval tv{o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        handshake_ok_ = SSL_connect(ssl_) == 1;
        if (!handshake_ok_) {
            char buf[256];
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            error_ = buf;
            ERR_clear_error();
        }
    }
    ~TlsClient() {
        if (ssl_) SSL_free(ssl_);
        if (fd_ >= 0) close(fd_);
        if (ctx_) SSL_CTX_free(ctx_);
    }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    bool handshake_ok() const { return handshake_ok_; }
    const std::string& error() const { return error_; }
    std::string version() const { return SSL_get_version(ssl_); }
    // The server certificate's fingerprint.
    std::string server_fingerprint() const {
        X509* x = SSL_get1_peer_certificate(ssl_);
        if (!x) return {};
        std::string fp = fingerprint_of(x);
        X509_free(x);
        return fp;
    }

    void raw(const std::string& bytes) {
        if (handshake_ok_) SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    }
    // The next line (without "\r\n"), or nullopt on timeout or close.
    std::optional<std::string> text_line(int timeout_ms = 10'000) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (std::optional<std::string> l = pop_line(buf_)) return l;
            if (!handshake_ok_ || !fill(until)) return std::nullopt;
        }
    }
    // Reads lines until one contains `needle` (returned), or nullopt.
    std::optional<std::string> until_line(const std::string& needle, int timeout_ms = 10'000) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < until) {
            auto l = text_line(timeout_ms);
            if (!l) return std::nullopt;
            if (l->find(needle) != std::string::npos) return l;
        }
        return std::nullopt;
    }
    // Whether the server ended the stream with close_notify (after rest() or a nullopt line).
    bool closed_cleanly() const { return last_error_ == SSL_ERROR_ZERO_RETURN; }
    // Everything until the server closes (or the timeout).
    std::string rest(int timeout_ms = 10'000) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (handshake_ok_ && fill(until)) {
        }
        std::string out;
        out.swap(buf_);
        return out;
    }

  private:
    // Reads more into buf_; false on close, error or timeout.
    bool fill(std::chrono::steady_clock::time_point until) {
        if (SSL_pending(ssl_) == 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            until - std::chrono::steady_clock::now())
                            .count();
            pollfd p{fd_, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return false;
        }
        char tmp[16384];
        int n = SSL_read(ssl_, tmp, sizeof tmp);
        if (n <= 0) {
            int e = SSL_get_error(ssl_, n);
            last_error_ = e;
            ERR_clear_error();
            // Post-handshake messages (TLS 1.3 tickets) read no application bytes.
            return e == SSL_ERROR_WANT_READ;
        }
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    bool handshake_ok_ = false;
    int last_error_ = 0;
    std::string error_;
    std::string buf_;
};

}  // namespace warren::test
