// TLS for the listeners (OpenSSL through Boost.Asio ssl): the server context made from the
// configured certificate and key, and the client certificate's fingerprint. Boost and OpenSSL
// headers: include this only from netadapter/*.cc.
#pragma once

#include "netadapter/asio.h"

#include <boost/asio/ssl.hpp>

#include <memory>
#include <string>

#include "netadapter/tls_options.h"

namespace warren {

// A server context: TLS 1.2 or later (1.3 offered), the certificate chain and key from
// `options`, and, with client_certificates, a request (never a demand) for the client's
// certificate, accepted whoever signed it (only its fingerprint is used). On failure: nullptr
// and `error` says what is wrong (file, reason).
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const TlsOptions& options,
                                                            std::string& error);

// The SHA-256 of the peer's certificate (DER) as lowercase hex; empty without one.
std::string peer_fingerprint(SSL* ssl);

}  // namespace warren
