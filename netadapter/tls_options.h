// What the TLS listeners are configured with (netadapter/tls.h makes the context). No Boost
// here: app/ includes it.
#pragma once

#include <cstdint>
#include <string>

namespace warren {

struct TlsOptions {
    std::string cert_file;  // PEM: the certificate, then its chain
    std::string key_file;   // PEM: the private key
    // A client that has not finished its handshake by then is closed.
    int64_t handshake_timeout_ms = 10'000;
    // Ask clients for a certificate (they may send none): WHOIS 276, SASL EXTERNAL.
    bool client_certificates = true;
    // "1.2" (1.2 and 1.3) or "1.3" (1.3 only).
    std::string min_version = "1.2";
};

}  // namespace warren
