// AdminHttp: the admin HTTP API (Boost.Beast) on the driver's io_context. It parses and
// authenticates requests, maps each route to a core AdminRequest, and writes the core's
// AdminReply back. No admin logic here: the core decides; this only translates.
//
// Bounds: header bytes, body bytes, sessions open at once, requests per second (token
// bucket, 429 past it), and a read/write deadline per request; a slow or broken HTTP client
// only ever holds its own socket. Authentication: `Authorization: Bearer <token>` compared in
// constant time; with no token configured the API is open, which start() allows only on a
// loopback address.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

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
    double requests_per_second = 50;
    double requests_burst = 100;
    int64_t request_timeout_ms = 10'000;
};

class AdminHttp {
  public:
    // `submit` hands a request to the core; the reply arrives later through `deliver`.
    using Submit = std::function<void(const AdminRequest&, std::function<void(const AdminReply&)>)>;
    AdminHttp(boost::asio::io_context& io, AdminHttpOptions options, Submit submit);
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
