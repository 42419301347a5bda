// libFuzzer target: the admin HTTP API from raw bytes to the core's answer. The input is one
// HTTP request as it arrives on the socket; Beast's parser reads it with the server's header
// and body limits, route_admin() (the server's own routing) maps it to an AdminRequest or an
// immediate error, and a real Server (with a registered user, a room and a message, so that
// suspensions, blocks and reports have something to act on) answers it. Checks: routing
// errors are 400, 404 or 405 with a message (405 also with an Allow list); every request the
// core takes gets exactly one answer, with an HTTP status the API documents and, when it says
// JSON, a body that parses as JSON; the core still serves its users afterwards.
#include <utility>  // first: Boost 1.74's Asio under C++20 (see netadapter/asio.h)

#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz/core_driver.h"
#include "netadapter/admin_http.h"
#include "netadapter/admin_route.h"

namespace {

namespace http = boost::beast::http;

bool documented(int status) {
    for (int s : {200, 400, 404, 409, 503})
        if (status == s) return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const warren::AdminHttpOptions limits;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(limits.header_bytes_max));
    parser.body_limit(limits.body_bytes_max);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = parser.put(boost::asio::buffer(data, size), ec);
    if (!ec && !parser.is_done() && used == size) parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;  // the server answers 400 and closes
    const auto& req = parser.get();
    auto verb = http::to_string(req.method());
    std::string_view target(req.target().data(), req.target().size());
    warren::AdminRoute r =
        warren::route_admin(std::string_view(verb.data(), verb.size()), target, req.body());
    if (!r.request) {
        WARREN_CHECK(r.status == 400 || r.status == 404 || r.status == 405);
        WARREN_CHECK(!r.message.empty());
        WARREN_CHECK(r.status != 405 || !r.allow.empty());
        return 0;
    }

    warren::fuzz::CoreDriver d{warren::Config{}};
    d.core->connect(1, "127.0.0.1", d.now);
    d.run();
    d.say(1,
          "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"alice\",\"password\":\"password\"}\n"
          "{\"id\":2,\"op\":\"CREATE_ROOM\",\"room\":\"r\"}\n"
          "{\"id\":3,\"op\":\"SEND_MESSAGE\",\"room\":\"r\",\"text\":\"hi\"}\n");
    warren::AdminId id = d.core->admin(*r.request, d.now);
    d.run();
    auto it = d.replies.find(id);
    WARREN_CHECK(it != d.replies.end());
    WARREN_CHECK(documented(it->second.status));
    if (it->second.content_type.starts_with("application/json"))
        WARREN_CHECK(!nlohmann::json::parse(it->second.body, nullptr, false).is_discarded());

    // Whatever the operator did, the core keeps answering: a new connection gets a reply.
    d.now.mono_us += 1'000'000;
    d.now.wall_ms += 1'000;
    d.core->tick(d.now);
    d.core->connect(2, "127.0.0.9", d.now);
    d.run();
    d.say(2, "{\"id\":1,\"op\":\"PING\"}\n");
    WARREN_CHECK(d.lines_to[2] > 0 || d.closed[2]);  // an answer, or a block's DISCONNECT
    return 0;
}
