#include "netadapter/admin_http.h"

#include "netadapter/asio.h"

#include <sodium.h>

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/server.h"
#include "netadapter/admin_route.h"
#include "netadapter/log.h"
#include "netadapter/status_page.h"

namespace warren {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

bool is_loopback_host(const std::string& host) {
    if (host == "localhost") return true;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    return !ec && addr.is_loopback();
}

namespace {

std::string error_body(int status, std::string_view message) {
    nlohmann::json j = {{"error", {{"status", status}, {"message", message}}}};
    return j.dump();
}

}  // namespace

namespace {
struct Session;

// A token bucket in steady-clock time.
struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    bool take(double per_second, double burst) {
        auto now = std::chrono::steady_clock::now();
        double elapsed = std::chrono::duration<double>(now - last).count();
        last = now;
        tokens = std::min(burst, tokens + elapsed * per_second);
        if (tokens < 1) return false;
        tokens -= 1;
        return true;
    }
};

// "host[:port]" or "[v6]:port" without the port, lower-cased.
std::string host_of(std::string_view header) {
    std::string h(header);
    for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
    if (std::count(h.begin(), h.end(), ':') == 1) h = h.substr(0, h.find(':'));
    return h;
}
}  // namespace

struct AdminHttp::State : std::enable_shared_from_this<AdminHttp::State> {
    State(asio::io_context& io, AdminHttpOptions o, Submit s, TlsContext t)
        : io(io), opt(std::move(o)), submit(std::move(s)), tls_context(std::move(t)), acceptor(io) {
        if (!opt.token.empty())
            crypto_generichash(token_hash, sizeof token_hash,
                               reinterpret_cast<const uint8_t*>(opt.token.data()), opt.token.size(),
                               nullptr, 0);
        budget.tokens = opt.requests_burst;
        for (std::string h : {opt.host, std::string("localhost"), std::string("127.0.0.1"),
                              std::string("::1"), std::string("[::1]")})
            hosts.push_back(host_of(h));
        if (opt.host.find(':') != std::string::npos) hosts.push_back("[" + opt.host + "]");
        for (const auto& h : opt.allowed_hosts) hosts.push_back(host_of(h));
    }
    asio::io_context& io;
    AdminHttpOptions opt;
    Submit submit;
    TlsContext tls_context;
    tcp::acceptor acceptor;
    uint8_t token_hash[32]{};
    std::vector<std::string> hosts;  // what a Host header may name
    size_t sessions = 0;
    std::map<std::string, size_t> per_peer;  // open sessions per peer address
    // Sessions that have not authenticated yet, oldest first: they give way to new ones.
    std::list<std::weak_ptr<Session>> strangers;
    Bucket budget;                           // authenticated requests
    std::map<std::string, Bucket> failures;  // failed authentications, per peer
    bool stopped = false;

    bool host_allowed(std::string_view header) const {
        std::string h = host_of(header);
        return std::find(hosts.begin(), hosts.end(), h) != hosts.end();
    }
    // "Bearer TOKEN" for programs; "Basic base64(ANY-NAME:TOKEN)" for a browser showing the
    // status page (it asks for a name and password once and sends them with every request).
    bool authorized(std::string_view header) const {
        if (opt.token.empty()) return true;
        constexpr std::string_view bearer = "Bearer ", basic = "Basic ";
        std::string given;
        if (header.starts_with(bearer)) {
            given = header.substr(bearer.size());
        } else if (header.starts_with(basic) && header.size() - basic.size() <= 1024) {
            std::string_view b64 = header.substr(basic.size());
            std::string decoded(b64.size(), '\0');
            size_t n = 0;
            if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                                  b64.data(), b64.size(), nullptr, &n, nullptr,
                                  sodium_base64_VARIANT_ORIGINAL) != 0)
                return false;
            decoded.resize(n);
            size_t colon = decoded.find(':');
            if (colon == std::string::npos) return false;
            given = decoded.substr(colon + 1);
        } else {
            return false;
        }
        uint8_t h[32];
        crypto_generichash(h, sizeof h, reinterpret_cast<const uint8_t*>(given.data()),
                           given.size(), nullptr, 0);
        return sodium_memcmp(h, token_hash, sizeof h) == 0;
    }
    // Failed authentications from one peer: a few a second; the table is bounded.
    bool may_fail_again(const std::string& peer) {
        if (failures.size() > 4096) failures.clear();
        auto [it, fresh] = failures.try_emplace(peer);
        if (fresh) it->second.tokens = 10;
        return it->second.take(2, 10);
    }
    // Makes room for a new session: the oldest stranger leaves when strangers hold their share
    // or every session is taken. False when nothing can make room.
    bool make_room();

    void accept();
};

namespace {

struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, std::shared_ptr<AdminHttp::State> o, std::string p)
        : stream(std::move(s)), owner(std::move(o)), peer_address(std::move(p)) {
        if (owner->opt.tls) {
            tls_context = owner->tls_context();
            tls = std::make_unique<ssl::stream<beast::tcp_stream&>>(stream, *tls_context);
        }
    }
    ~Session() { release(); }
    // Gives back its place in the bounds (at once when evicted: its handlers unwind later).
    void release() {
        if (!counted) return;
        counted = false;
        --owner->sessions;
        if (--owner->per_peer[peer_address] == 0) owner->per_peer.erase(peer_address);
        if (stranger) owner->strangers.erase(position);
        stranger = false;
    }

    beast::tcp_stream stream;
    // With opt.tls: TLS over `stream` (its deadlines still apply), and the context it was made
    // with (a SIGHUP may replace the driver's).
    std::shared_ptr<ssl::context> tls_context;
    std::unique_ptr<ssl::stream<beast::tcp_stream&>> tls;
    bool handshaken = false;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    std::shared_ptr<AdminHttp::State> owner;
    std::string peer_address;
    bool counted = true;                                   // holds a place in the bounds
    bool stranger = true;                                  // has not authenticated yet
    std::list<std::weak_ptr<Session>>::iterator position;  // in owner->strangers

    // Calls f with the stream requests are read from and responses written to.
    template <class F>
    void with_stream(F&& f) {
        if (tls)
            f(*tls);
        else
            f(stream);
    }

    void read() {
        stream.expires_after(std::chrono::milliseconds(owner->opt.request_timeout_ms));
        if (tls && !handshaken) {
            tls->async_handshake(ssl::stream_base::server,
                                 [self = shared_from_this()](beast::error_code ec) {
                                     if (ec) return self->close();
                                     self->handshaken = true;
                                     self->read();
                                 });
            return;
        }
        parser.emplace();
        parser->header_limit(static_cast<uint32_t>(owner->opt.header_bytes_max));
        parser->body_limit(owner->opt.body_bytes_max);
        with_stream([this](auto& s) {
            http::async_read(
                s, buffer, *parser,
                [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
        });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::body_limit)
            return respond(413, error_body(413, "request body too large"), "application/json",
                           false);
        if (ec == http::error::header_limit)
            return respond(431, error_body(431, "request headers too large"), "application/json",
                           false);
        if (ec == http::error::end_of_stream || ec) return close();
        handle(parser->release());
    }

    // Host, Origin and authentication, before the request spends anything; nullopt: go on.
    std::optional<int> refusal(const http::request<http::string_body>& req, bool probe) {
        auto host = req[http::field::host];
        if (host.empty()) return 400;
        if (!owner->host_allowed(std::string_view(host.data(), host.size()))) return 421;
        if (req.count(http::field::origin)) return 403;
        if (probe) return std::nullopt;
        auto auth = req[http::field::authorization];
        if (owner->authorized(std::string_view(auth.data(), auth.size()))) {
            authenticated();
            return std::nullopt;
        }
        log_event(LogLevel::warn, "admin_auth_failed",
                  {{"peer", peer_address},
                   {"target", std::string_view(req.target().data(), req.target().size())}});
        return owner->may_fail_again(peer_address) ? 401 : 429;
    }

    void authenticated() {
        if (!stranger) return;
        stranger = false;
        owner->strangers.erase(position);
    }

    void handle(http::request<http::string_body> req) {
        bool keep = req.keep_alive();
        std::string_view target(req.target().data(), req.target().size());
        bool probe =
            req.method() == http::verb::get && (target == "/healthz" || target == "/readyz");
        if (std::optional<int> no = refusal(req, probe)) {
            static constexpr std::pair<int, std::string_view> why[] = {
                {400, "a Host header is required"},
                {421, "this server does not answer for that Host"},
                {403, "cross-origin requests are refused"},
                {401, "missing or wrong bearer token"},
                {429, "too many failed authentications"}};
            std::string_view text = "refused";
            for (const auto& [code, t] : why)
                if (code == *no) text = t;
            return respond(*no, error_body(*no, text), "application/json", keep && *no == 401,
                           *no == 429 ? "1" : "");
        }
        if (!probe &&
            !owner->budget.take(owner->opt.requests_per_second, owner->opt.requests_burst))
            return respond(429, error_body(429, "too many admin requests"), "application/json",
                           keep, "1");
        auto type = req[http::field::content_type];
        if (req.method() == http::verb::post &&
            !std::string_view(type.data(), type.size()).starts_with("application/json"))
            return respond(415, error_body(415, "a POST body must be application/json"),
                           "application/json", keep);
        if (req.method() == http::verb::get && (target == "/" || target == "/status")) {
            extra = {{"Content-Security-Policy", status_page_csp()},
                     {"X-Frame-Options", "DENY"},
                     {"Referrer-Policy", "no-referrer"}};
            return respond(200, std::string(status_page_html()), "text/html; charset=utf-8", keep);
        }
        auto verb = http::to_string(req.method());
        AdminRoute r = route_admin(std::string_view(verb.data(), verb.size()), target, req.body());
        if (!r.request) {
            if (r.status == 405) allow = r.allow;
            return respond(r.status, error_body(r.status, r.message), "application/json", keep);
        }
        owner->submit(*r.request, [self = shared_from_this(), keep](const AdminReply& reply) {
            self->respond(reply.status, reply.body, reply.content_type, keep);
        });
    }

    void respond(int status, std::string body, std::string_view type, bool keep,
                 std::string_view retry_after = {}) {
        auto res = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(status), 11);
        res->set(http::field::server, "warren-admin");
        res->set(http::field::content_type, beast::string_view(type.data(), type.size()));
        res->set(http::field::cache_control, "no-store");
        if (status == 401) {
            // Two challenges, one header each: programs use Bearer, browsers understand Basic.
            res->insert(http::field::www_authenticate, "Bearer");
            res->insert(http::field::www_authenticate, R"(Basic realm="warren admin", charset="UTF-8")");
        }
        res->set("X-Content-Type-Options", "nosniff");
        for (const auto& [field, value] : extra) res->set(field, value);
        extra.clear();
        if (!allow.empty()) res->set(http::field::allow, allow);
        if (!retry_after.empty())
            res->set(http::field::retry_after,
                     beast::string_view(retry_after.data(), retry_after.size()));
        res->keep_alive(keep);
        res->body() = std::move(body);
        if (type.starts_with("application/json")) res->body() += "\n";
        res->prepare_payload();
        allow.clear();
        stream.expires_after(std::chrono::milliseconds(owner->opt.request_timeout_ms));
        with_stream([&](auto& s) {
            http::async_write(s, *res,
                              [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
                                  if (ec || !keep || self->owner->stopped) return self->close();
                                  self->read();
                              });
        });
    }

    void close() {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
    }

    std::string allow;
    std::vector<std::pair<std::string, std::string>> extra;  // headers for the next response
};

}  // namespace

bool AdminHttp::State::make_room() {
    size_t strangers_max = opt.sessions_max - std::min(opt.sessions_reserved, opt.sessions_max);
    while (!strangers.empty() &&
           (strangers.size() >= strangers_max || sessions >= opt.sessions_max)) {
        std::shared_ptr<Session> oldest = strangers.front().lock();
        if (!oldest) {
            strangers.pop_front();
            continue;
        }
        oldest->release();  // leaves the list and the counts
        oldest->close();
    }
    return sessions < opt.sessions_max;
}

void AdminHttp::State::accept() {
    acceptor.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
            if (ec) {
                if (ec != asio::error::operation_aborted && !self->stopped) self->accept();
                return;
            }
            boost::system::error_code ignored;
            auto ep = socket.remote_endpoint(ignored);
            std::string peer = ep.address().to_string();
            if (self->per_peer[peer] >= self->opt.sessions_per_peer_max || !self->make_room()) {
                if (self->per_peer[peer] == 0) self->per_peer.erase(peer);
                socket.close(ignored);  // over a bound: costs one accept and one close
            } else {
                ++self->sessions;
                ++self->per_peer[peer];
                auto session = std::make_shared<Session>(std::move(socket), self, peer);
                session->position = self->strangers.insert(self->strangers.end(), session);
                session->read();
            }
            self->accept();
        });
}

AdminHttp::AdminHttp(asio::io_context& io, AdminHttpOptions options, Submit submit,
                     TlsContext tls_context)
    : s_(std::make_shared<State>(io, std::move(options), std::move(submit),
                                 std::move(tls_context))) {}

AdminHttp::~AdminHttp() {
    stop();
}

std::string AdminHttp::start() {
    State& s = *s_;
    if (s.opt.tls && !(s.tls_context && s.tls_context()))
        return "the admin API over TLS needs [tls] cert_file and key_file";
    if (s.opt.token.empty() && !is_loopback_host(s.opt.host))
        return "the admin API needs a token (WARREN_ADMIN_TOKEN or [admin] token) to listen on " +
               s.opt.host;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(s.opt.host == "localhost" ? "127.0.0.1" : s.opt.host, ec);
    if (ec) return "bad admin listen address '" + s.opt.host + "'";
    tcp::endpoint ep(addr, s.opt.port);
    s.acceptor.open(ep.protocol(), ec);
    if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) s.acceptor.bind(ep, ec);
    if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return "cannot listen on " + s.opt.host + ":" + std::to_string(s.opt.port) + ": " +
               ec.message();
    s.accept();
    return {};
}

std::string AdminHttp::local_host() const {
    boost::system::error_code ec;
    return s_->acceptor.local_endpoint(ec).address().to_string();
}

uint16_t AdminHttp::local_port() const {
    boost::system::error_code ec;
    return s_->acceptor.local_endpoint(ec).port();
}

void AdminHttp::stop() {
    s_->stopped = true;
    boost::system::error_code ignored;
    s_->acceptor.close(ignored);
}

}  // namespace warren
