// AdminHttp: the admin HTTP API (Boost.Beast) on the driver's io_context. It parses and
// authenticates requests, maps each route to a core AdminRequest, and writes the core's
// AdminReply back. No admin logic here: the core decides; this only translates.
//
// Bounds: header bytes, body bytes, sessions open at once (and per peer address), requests
// per second (token bucket, 429 past it), and a read/write deadline per request; a slow or
// broken HTTP client only ever holds its own socket.
//
// Every request needs a Host naming this server (the listen address, localhost, or one of
// allowed_hosts; anything else is 421, so DNS rebinding cannot reach it), no Origin (403: a
// browser page cannot drive it), and, for POST, an application/json body (415). Then it is
// authenticated (`Authorization: Bearer <token>`, compared in constant time) before it spends
// anything: failed attempts are throttled per peer and never touch the budget of
// authenticated requests, and a session that has not authenticated yet gives way to a new one
// when the sessions left for strangers are taken, so idle sockets cannot lock the operator
// out. GET /healthz and /readyz (probes) need no token. With no token at all the API is open,
// which start() allows only on a loopback address (warrend makes a token on first start).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace warren {

struct AdminRequest;
struct AdminReply;

struct AdminHttpOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 7071;
    std::string token;  // empty: no authentication (loopback only)
    size_t header_bytes_max = 8 * 1024;
    size_t body_bytes_max = 16 * 1024;
    size_t sessions_max = 64;
    size_t sessions_per_peer_max = 8;
    // Sessions kept for authenticated clients: strangers' sessions never take these.
    size_t sessions_reserved = 16;
    // Host names (besides the listen address, localhost, 127.0.0.1 and ::1) that requests may
    // name, e.g. the name a Prometheus server scrapes.
    std::vector<std::string> allowed_hosts;
    double requests_per_second = 50;
    double requests_burst = 100;
    int64_t request_timeout_ms = 10'000;
    // HTTPS with the driver's certificate (TlsContext); the handshake counts against the
    // request deadline.
    bool tls = false;
};

class AdminHttp {
  public:
    // `submit` hands a request to the core; the reply arrives later through `deliver`.
    using Submit = std::function<void(const AdminRequest&, std::function<void(const AdminReply&)>)>;
    // The TLS context for a new session (options.tls): the current one, after any reload.
    using TlsContext = std::function<std::shared_ptr<boost::asio::ssl::context>()>;
    AdminHttp(boost::asio::io_context& io, AdminHttpOptions options, Submit submit,
              TlsContext tls_context = {});
    ~AdminHttp();
    AdminHttp(const AdminHttp&) = delete;
    AdminHttp& operator=(const AdminHttp&) = delete;

    // Binds and starts accepting. Returns an error message, or empty on success.
    std::string start();
    std::string local_host() const;
    uint16_t local_port() const;
    void stop();

    struct State;

  private:
    std::shared_ptr<State> s_;
};

// True for 127.0.0.0/8 and ::1 (and their names "localhost").
bool is_loopback_host(const std::string& host);

}  // namespace warren
