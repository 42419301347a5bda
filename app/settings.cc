#include "app/settings.h"

#include <toml++/toml.h>

#include <charconv>
#include <set>

#include "core/security/address.h"

namespace warren {

bool parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    std::string p = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value > 65535 || p.empty()) return false;
    port = static_cast<uint16_t>(value);
    return !host.empty();
}

namespace {

template <typename T>
std::optional<std::string> read_int(const toml::table& t, const char* key, T& out) {
    if (!t.contains(key)) return std::nullopt;
    auto v = t[key].value<int64_t>();
    if (!v || *v < 0) return std::string(key) + " must be a non-negative integer";
    out = static_cast<T>(*v);
    return std::nullopt;
}

std::optional<std::string> check_keys(const toml::table& t, const std::string& table,
                                      const std::set<std::string>& known) {
    for (const auto& [k, v] : t)
        if (!known.contains(std::string(k.str())))
            return "unknown key '" + std::string(k.str()) + "' in [" + table + "]";
    return std::nullopt;
}

// [rate], [connections], [security] and [alerts]: the core's security and alert knobs.
std::optional<std::string> load_security(const toml::table& root, Config& c) {
    if (auto* rate = root["rate"].as_table()) {
        if (auto bad =
                check_keys(*rate, "rate", {"user_per_min", "user_burst", "ip_per_min", "ip_burst"}))
            return bad;
        for (auto bad : {read_int(*rate, "user_per_min", c.rate_user_per_min),
                         read_int(*rate, "user_burst", c.rate_user_burst),
                         read_int(*rate, "ip_per_min", c.rate_ip_per_min),
                         read_int(*rate, "ip_burst", c.rate_ip_burst)})
            if (bad) return "rate." + *bad;
        if (c.rate_user_burst < 5 || c.rate_ip_burst < 5)
            return std::string("rate bursts must be at least 5 (REGISTER and SEARCH weigh 5)");
    }
    if (auto* conns = root["connections"].as_table()) {
        if (auto bad = check_keys(*conns, "connections",
                                  {"per_ip_max", "login_timeout_ms", "idle_timeout_ms",
                                   "new_per_ip_max", "new_window_ms", "max"}))
            return bad;
        for (auto bad : {read_int(*conns, "per_ip_max", c.conns_per_ip_max),
                         read_int(*conns, "login_timeout_ms", c.login_timeout_ms),
                         read_int(*conns, "idle_timeout_ms", c.idle_timeout_ms),
                         read_int(*conns, "new_per_ip_max", c.connects_per_ip_window_max),
                         read_int(*conns, "new_window_ms", c.connects_window_ms),
                         read_int(*conns, "max", c.connections_max)})
            if (bad) return "connections." + *bad;
        if (c.login_timeout_ms < 1000 || c.idle_timeout_ms < 1000)
            return std::string("connection timeouts must be at least 1000 ms");
    }
    if (auto* sec = root["security"].as_table()) {
        if (auto bad = check_keys(*sec, "security",
                                  {"allowlist", "name_failures_max", "name_lock_ms",
                                   "ip_login_failures_max", "registrations_per_ip_max",
                                   "audit_retention_ms", "audit_rows_max", "block_ladder_ms"}))
            return bad;
        if (auto* list = (*sec)["allowlist"].as_array()) {
            for (const auto& e : *list) {
                auto cidr = e.value<std::string>();
                Cidrs probe;
                if (!cidr || !probe.add(*cidr))
                    return std::string(
                        "security.allowlist must be a list of CIDRs like "
                        "\"10.0.0.0/8\" or \"::1/128\"");
                c.allowlist.push_back(*cidr);
            }
        }
        if (auto* ladder = (*sec)["block_ladder_ms"].as_array()) {
            c.block_ladder_ms.clear();
            for (const auto& e : *ladder) {
                auto v = e.value<int64_t>();
                if (!v || *v < 1000)
                    return std::string("security.block_ladder_ms must list durations >= 1000");
                c.block_ladder_ms.push_back(*v);
            }
            if (c.block_ladder_ms.empty())
                return std::string("security.block_ladder_ms must not be empty");
        }
        for (auto bad : {read_int(*sec, "name_failures_max", c.name_failures_max),
                         read_int(*sec, "name_lock_ms", c.name_lock_ms),
                         read_int(*sec, "ip_login_failures_max", c.ip_login_failures_max),
                         read_int(*sec, "registrations_per_ip_max", c.registrations_per_ip_max),
                         read_int(*sec, "audit_retention_ms", c.audit_retention_ms),
                         read_int(*sec, "audit_rows_max", c.audit_rows_max)})
            if (bad) return "security." + *bad;
        if (c.audit_rows_max < 1) return std::string("security.audit_rows_max must be at least 1");
    }
    if (auto* t = root["threat"].as_table()) {
        if (auto bad = check_keys(
                *t, "threat",
                {"medium", "high", "critical", "decay_per_min", "points_bad_frame",
                 "points_signature", "points_rate_limited", "points_login_failure",
                 "points_conn_refused", "points_repeated_text", "points_dm_spread", "points_churn",
                 "points_invite_spam", "repeated_text_rooms", "dm_recipients_max", "new_account_ms",
                 "churn_max", "invitations_max", "behaviour_window_ms"}))
            return bad;
        for (auto bad :
             {read_int(*t, "medium", c.threat_medium), read_int(*t, "high", c.threat_high),
              read_int(*t, "critical", c.threat_critical),
              read_int(*t, "decay_per_min", c.threat_decay_per_min),
              read_int(*t, "points_bad_frame", c.points_bad_frame),
              read_int(*t, "points_signature", c.points_signature),
              read_int(*t, "points_rate_limited", c.points_rate_limited),
              read_int(*t, "points_login_failure", c.points_login_failure),
              read_int(*t, "points_conn_refused", c.points_conn_refused),
              read_int(*t, "points_repeated_text", c.points_repeated_text),
              read_int(*t, "points_dm_spread", c.points_dm_spread),
              read_int(*t, "points_churn", c.points_churn),
              read_int(*t, "points_invite_spam", c.points_invite_spam),
              read_int(*t, "repeated_text_rooms", c.repeated_text_rooms),
              read_int(*t, "dm_recipients_max", c.dm_recipients_max),
              read_int(*t, "new_account_ms", c.new_account_ms),
              read_int(*t, "churn_max", c.churn_max),
              read_int(*t, "invitations_max", c.invitations_max),
              read_int(*t, "behaviour_window_ms", c.behaviour_window_ms)})
            if (bad) return "threat." + *bad;
        if (!(0 < c.threat_medium && c.threat_medium < c.threat_high &&
              c.threat_high < c.threat_critical))
            return std::string("threat levels must satisfy 0 < medium < high < critical");
        if (c.repeated_text_rooms < 2)
            return std::string("threat.repeated_text_rooms must be at least 2");
    }
    if (auto* alerts = root["alerts"].as_table()) {
        if (auto bad = check_keys(*alerts, "alerts",
                                  {"p99_warning_ms", "p99_critical_ms", "error_rate_pct",
                                   "rss_bytes", "block_surge", "connections_pct"}))
            return bad;
        for (auto bad : {read_int(*alerts, "p99_warning_ms", c.alert_p99_warning_ms),
                         read_int(*alerts, "p99_critical_ms", c.alert_p99_critical_ms),
                         read_int(*alerts, "error_rate_pct", c.alert_error_rate_pct),
                         read_int(*alerts, "rss_bytes", c.alert_rss_bytes),
                         read_int(*alerts, "block_surge", c.alert_block_surge),
                         read_int(*alerts, "connections_pct", c.alert_connections_pct)})
            if (bad) return "alerts." + *bad;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> load_settings_file(const std::string& path, Settings& s) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return "cannot read " + path + ": " + std::string(e.description());
    }
    if (auto bad = check_keys(root, "",
                              {"server", "storage", "limits", "hashing", "auth", "rate",
                               "connections", "security", "admin", "alerts", "threat"}))
        return bad;
    if (auto bad = load_security(root, s.core)) return bad;
    if (auto* admin = root["admin"].as_table()) {
        if (auto bad = check_keys(*admin, "admin", {"token", "listen"})) return bad;
        if (auto token = (*admin)["token"].value<std::string>()) s.driver.admin.token = *token;
        if (auto listen = (*admin)["listen"].value<std::string>()) {
            if (*listen == "off")
                s.driver.admin_enabled = false;
            else if (!parse_host_port(*listen, s.driver.admin.host, s.driver.admin.port))
                return "admin.listen must be HOST:PORT or \"off\"";
        }
    }
    if (auto* auth = root["auth"].as_table()) {
        if (auto bad = check_keys(*auth, "auth", {"admins", "registration"})) return bad;
        if (auto reg = (*auth)["registration"].value<std::string>()) {
            if (*reg != "open" && *reg != "closed")
                return "auth.registration must be \"open\" or \"closed\"";
            s.core.registration_open = *reg == "open";
        }
        if (auto* admins = (*auth)["admins"].as_array()) {
            for (const auto& a : *admins) {
                auto name = a.value<std::string>();
                if (!name) return std::string("auth.admins must be a list of usernames");
                s.core.admin_usernames.push_back(*name);
            }
        }
    }
    if (auto* server = root["server"].as_table()) {
        if (auto bad = check_keys(*server, "server",
                                  {"listen", "data_dir", "log_level", "log_format",
                                   "log_lines_per_second", "log_burst"}))
            return bad;
        for (auto [key, out] : {std::pair{"log_lines_per_second", &s.log_lines_per_second},
                                std::pair{"log_burst", &s.log_burst}}) {
            if (!server->contains(key)) continue;
            auto v = (*server)[key].value<double>();
            if (!v || *v < 1) return "server." + std::string(key) + " must be a number >= 1";
            *out = *v;
        }
        if (auto fmt = (*server)["log_format"].value<std::string>()) {
            if (*fmt != "text" && *fmt != "json") return "server.log_format must be text or json";
            s.log_format = *fmt;
        }
        if (auto listen = (*server)["listen"].value<std::string>())
            if (!parse_host_port(*listen, s.driver.listen_host, s.driver.listen_port))
                return "server.listen must be HOST:PORT";
        if (auto dir = (*server)["data_dir"].value<std::string>()) s.data_dir = *dir;
        if (auto lvl = (*server)["log_level"].value<std::string>()) s.log_level = *lvl;
    }
    if (auto* storage = root["storage"].as_table()) {
        if (auto bad = check_keys(*storage, "storage", {"synchronous"})) return bad;
        if (auto sync = (*storage)["synchronous"].value<std::string>()) {
            if (*sync == "normal")
                s.synchronous = Synchronous::normal;
            else if (*sync == "full")
                s.synchronous = Synchronous::full;
            else
                return "storage.synchronous must be \"normal\" or \"full\"";
        }
    }
    if (auto* limits = root["limits"].as_table()) {
        Config& c = s.core;
        if (auto bad =
                check_keys(*limits, "limits",
                           {"max_frame_bytes", "bad_frames_max", "text_max_bytes",
                            "outbound_bytes_max", "conn_pending_max", "room_cache_messages_max",
                            "session_ttl_ms", "invitation_ttl_ms"}))
            return bad;
        for (auto bad : {read_int(*limits, "max_frame_bytes", c.max_frame_bytes),
                         read_int(*limits, "bad_frames_max", c.bad_frames_max),
                         read_int(*limits, "text_max_bytes", c.text_max_bytes),
                         read_int(*limits, "outbound_bytes_max", c.outbound_bytes_max),
                         read_int(*limits, "conn_pending_max", c.conn_pending_max),
                         read_int(*limits, "room_cache_messages_max", c.room_cache_messages_max),
                         read_int(*limits, "session_ttl_ms", c.session_ttl_ms),
                         read_int(*limits, "invitation_ttl_ms", c.invitation_ttl_ms)})
            if (bad) return "limits." + *bad;
        if (c.max_frame_bytes < 1024 || c.text_max_bytes + 512 > c.max_frame_bytes)
            return "limits.max_frame_bytes must be at least 1024 and exceed text_max_bytes by 512";
        if (c.room_cache_messages_max < c.history_page_max)
            return "limits.room_cache_messages_max must be at least " +
                   std::to_string(c.history_page_max);
    }
    if (auto* hashing = root["hashing"].as_table()) {
        if (auto bad = check_keys(*hashing, "hashing", {"threads", "queue_max"})) return bad;
        if (auto bad = read_int(*hashing, "threads", s.driver.hash_threads))
            return "hashing." + *bad;
        if (auto bad = read_int(*hashing, "queue_max", s.driver.hash_queue_max))
            return "hashing." + *bad;
        if (s.driver.hash_threads < 1) return "hashing.threads must be at least 1";
    }
    return std::nullopt;
}

}  // namespace warren
