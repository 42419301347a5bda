#include "netadapter/admin_route.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace warren {

namespace {

std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            unsigned v = 0;
            auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (ec == std::errc() && p == s.data() + i + 3) {
                out.push_back(static_cast<char>(v));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

std::optional<int64_t> query_int(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        size_t eq = kv.find('=');
        if (kv.substr(0, eq) == key && eq != std::string_view::npos) {
            std::string_view v = kv.substr(eq + 1);
            int64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
            return n;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

bool has_query_key(std::string_view query, std::string_view key) {
    std::string k = std::string(key) + "=";
    return query.starts_with(k) || query.find("&" + k) != std::string_view::npos;
}

bool read_body_fields(const std::string& body, AdminRequest& q, AdminRoute& out, bool needs_ip) {
    if (body.empty() && !needs_ip) return true;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        out.status = 400;
        out.message = "the body must be a JSON object";
        return false;
    }
    auto fail = [&](std::string m) {
        out.status = 400;
        out.message = std::move(m);
        return false;
    };
    if (needs_ip) {
        if (!j.contains("ip") || !j["ip"].is_string()) return fail("'ip' (a string) is required");
        q.ip = j["ip"].get<std::string>();
    }
    if (j.contains("duration_ms") && !j["duration_ms"].is_null()) {
        if (!j["duration_ms"].is_number_integer()) return fail("'duration_ms' must be an integer");
        q.duration_ms = j["duration_ms"].get<int64_t>();
    }
    if (j.contains("reason") && !j["reason"].is_null()) {
        if (!j["reason"].is_string()) return fail("'reason' must be a string");
        q.reason = j["reason"].get<std::string>();
        if (q.reason.size() > 200) return fail("'reason' must be at most 200 bytes");
    }
    if (j.contains("name") && !j["name"].is_null()) {
        if (!j["name"].is_string()) return fail("'name' must be a string");
        q.name = j["name"].get<std::string>();
    }
    if (j.contains("rule") && !j["rule"].is_null()) {
        if (!j["rule"].is_string()) return fail("'rule' must be a string");
        q.rule = j["rule"].get<std::string>();
    }
    return true;
}

}  // namespace

AdminRoute route_admin(std::string_view method, std::string_view target,
                       const std::string& body) {
    AdminRoute out;
    size_t qm = target.find('?');
    std::string_view path = target.substr(0, qm);
    std::string_view query = qm == std::string_view::npos ? "" : target.substr(qm + 1);
    using K = AdminRequest::Kind;
    auto only = [&](std::string_view want, K kind, std::string_view allow) {
        if (method != want) {
            out.status = 405;
            out.message = "method not allowed";
            out.allow = allow;
            return;
        }
        AdminRequest q;
        q.kind = kind;
        out.request = q;
    };
    const std::string_view perf = "/api/v1/admin/performance/";
    const std::string_view blocks = "/api/v1/admin/security/blocks";
    const std::string_view users = "/api/v1/admin/users/";
    if (path == "/metrics") {
        only("GET", K::prometheus, "GET");
    } else if (path == "/healthz") {
        only("GET", K::health, "GET");
    } else if (path == "/readyz") {
        only("GET", K::ready, "GET");
    } else if (path.starts_with(perf) && path.substr(perf.size()) == "metrics") {
        only("GET", K::metrics, "GET");
    } else if (path.starts_with(perf) && path.substr(perf.size()) == "report") {
        only("GET", K::report, "GET");
    } else if (path.starts_with(perf) && path.substr(perf.size()) == "alerts") {
        if (method == "POST") {
            AdminRequest q;
            q.kind = K::clear_alerts;
            if (read_body_fields(body, q, out, false)) out.request = q;
        } else {
            only("GET", K::alerts, "GET, POST");
        }
    } else if (path == blocks) {
        if (method == "POST") {
            AdminRequest q;
            q.kind = K::block;
            if (read_body_fields(body, q, out, true)) out.request = q;
        } else {
            only("GET", K::blocks, "GET, POST");
        }
    } else if (path.starts_with(std::string(blocks) + "/") && path.size() > blocks.size() + 1) {
        only("DELETE", K::unblock, "DELETE");
        if (out.request) out.request->ip = percent_decode(path.substr(blocks.size() + 1));
    } else if (path.starts_with(users)) {
        std::string_view rest = path.substr(users.size());
        size_t slash = rest.find('/');
        std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
        if (slash == 0 ||
            (action != "suspend" && action != "unsuspend" && action != "sessions/revoke")) {
            out.status = 404;
            out.message = "no such endpoint";
            return out;
        }
        only("POST",
             action == "suspend"     ? K::suspend
             : action == "unsuspend" ? K::unsuspend
                                     : K::revoke_sessions,
             "POST");
        if (out.request) {
            out.request->username = percent_decode(rest.substr(0, slash));
            if (!read_body_fields(body, *out.request, out, false)) out.request.reset();
        }
    } else if (path == "/api/v1/admin/backup") {
        only("POST", K::backup, "POST");
        if (out.request && !read_body_fields(body, *out.request, out, false)) out.request.reset();
    } else if (path == "/api/v1/admin/audit") {
        only("GET", K::audit, "GET");
        if (out.request) {
            auto before = query_int(query, "before");
            auto limit = query_int(query, "limit");
            if ((has_query_key(query, "before") && (!before || *before < 1)) ||
                (has_query_key(query, "limit") && (!limit || *limit < 1))) {
                out.request.reset();
                out.status = 400;
                out.message = "before and limit must be positive integers";
                return out;
            }
            out.request->before = before.value_or(0);
            out.request->limit =
                static_cast<uint32_t>(std::min<int64_t>(limit.value_or(50), 100000));
        }
    } else {
        out.status = 404;
        out.message = "no such endpoint";
    }
    return out;
}

}  // namespace warren
