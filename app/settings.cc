#include "app/settings.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>
#include <set>
#include <type_traits>
#include <variant>

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

constexpr int64_t second = 1000, minute = 60 * second, hour = 60 * minute, day = 24 * hour;
constexpr int64_t year = 366 * day;

// Where a key is stored: a Config field of one of these types, or a process setting.
// (size_t and uint64_t are one type here, which a static_assert checks.)
static_assert(std::is_same_v<size_t, uint64_t>);
using IntTarget = std::variant<uint32_t Config::*, int64_t Config::*, size_t Config::*,
                               int DriverOptions::*, size_t DriverOptions::*>;

// Every integer key of the file, with the range the server can run with. A value outside it
// is refused with the key's name and place, never truncated or wrapped.
struct IntKey {
    std::string_view table, key;
    IntTarget target;
    int64_t min, max;
};

const IntKey int_keys[] = {
    {"rate", "user_per_min", &Config::rate_user_per_min, 1, 1'000'000'000},
    {"rate", "user_burst", &Config::rate_user_burst, 5, 1'000'000'000},
    {"rate", "ip_per_min", &Config::rate_ip_per_min, 1, 1'000'000'000},
    {"rate", "ip_burst", &Config::rate_ip_burst, 5, 1'000'000'000},
    {"connections", "per_ip_max", &Config::conns_per_ip_max, 1, 1'000'000'000},
    {"connections", "login_timeout_ms", &Config::login_timeout_ms, second, day},
    {"connections", "idle_timeout_ms", &Config::idle_timeout_ms, second, 30 * day},
    {"irc", "ping_interval_ms", &Config::irc_ping_interval_ms, second, day},
    {"irc", "ping_timeout_ms", &Config::irc_ping_timeout_ms, second, day},
    {"irc", "flood_bytes_max", &Config::irc_flood_bytes_max, 1024, 16 << 20},
    {"connections", "new_per_ip_max", &Config::connects_per_ip_window_max, 1, 1'000'000'000},
    {"connections", "new_window_ms", &Config::connects_window_ms, second, day},
    {"connections", "max", &Config::connections_max, 1, 1'000'000},
    {"security", "name_failures_max", &Config::name_failures_max, 1, 1'000'000'000},
    {"security", "name_lock_ms", &Config::name_lock_ms, second, 30 * day},
    {"security", "ip_login_failures_max", &Config::ip_login_failures_max, 1, 1'000'000'000},
    {"security", "registrations_per_ip_max", &Config::registrations_per_ip_max, 1, 1'000'000'000},
    {"security", "audit_retention_ms", &Config::audit_retention_ms, day, 10 * year},
    {"security", "audit_rows_max", &Config::audit_rows_max, 1, 1'000'000'000},
    {"security", "ipv6_prefix_bits", &Config::ipv6_prefix_bits, 16, 64},
    {"security", "ipv6_prefix_factor", &Config::ipv6_prefix_factor, 1, 4096},
    {"threat", "medium", &Config::threat_medium, 1, 1'000'000},
    {"threat", "high", &Config::threat_high, 1, 1'000'000},
    {"threat", "critical", &Config::threat_critical, 1, 1'000'000},
    {"threat", "decay_per_min", &Config::threat_decay_per_min, 0, 1'000'000},
    {"threat", "points_bad_frame", &Config::points_bad_frame, 0, 1'000'000},
    {"threat", "points_signature", &Config::points_signature, 0, 1'000'000},
    {"threat", "points_rate_limited", &Config::points_rate_limited, 0, 1'000'000},
    {"threat", "points_login_failure", &Config::points_login_failure, 0, 1'000'000},
    {"threat", "points_conn_refused", &Config::points_conn_refused, 0, 1'000'000},
    {"threat", "points_repeated_text", &Config::points_repeated_text, 0, 1'000'000},
    {"threat", "points_dm_spread", &Config::points_dm_spread, 0, 1'000'000},
    {"threat", "points_churn", &Config::points_churn, 0, 1'000'000},
    {"threat", "points_invite_spam", &Config::points_invite_spam, 0, 1'000'000},
    {"threat", "repeated_text_rooms", &Config::repeated_text_rooms, 2, 1000},
    {"threat", "dm_recipients_max", &Config::dm_recipients_max, 1, 1'000'000},
    {"threat", "new_account_ms", &Config::new_account_ms, 0, 10 * year},
    {"threat", "churn_max", &Config::churn_max, 1, 1'000'000},
    {"threat", "invitations_max", &Config::invitations_max, 1, 1'000'000},
    {"threat", "behaviour_window_ms", &Config::behaviour_window_ms, second, day},
    {"alerts", "p99_warning_ms", &Config::alert_p99_warning_ms, 1, day},
    {"alerts", "p99_critical_ms", &Config::alert_p99_critical_ms, 1, day},
    {"alerts", "error_rate_pct", &Config::alert_error_rate_pct, 1, 100},
    {"alerts", "rss_bytes", &Config::alert_rss_bytes, 1 << 20, int64_t{1} << 40},
    {"alerts", "block_surge", &Config::alert_block_surge, 1, 1'000'000},
    {"alerts", "connections_pct", &Config::alert_connections_pct, 1, 100},
    {"limits", "max_frame_bytes", &Config::max_frame_bytes, 1024, 16 << 20},
    {"limits", "bad_frames_max", &Config::bad_frames_max, 1, 1000},
    {"limits", "text_max_bytes", &Config::text_max_bytes, 1, 1 << 20},
    {"limits", "password_min", &Config::password_min, 1, 128},
    {"limits", "outbound_bytes_max", &Config::outbound_bytes_max, 64 << 10, 1 << 30},
    {"limits", "outbound_bytes_stalled_max", &Config::outbound_bytes_stalled_max, 4 << 10, 1 << 30},
    {"limits", "outbound_stall_ms", &Config::outbound_stall_ms, second, hour},
    {"limits", "outbound_bytes_guest_max", &Config::outbound_bytes_guest_max, 4 << 10, 1 << 30},
    {"limits", "outbound_bytes_total_max", &Config::outbound_bytes_total_max, 1 << 20,
     int64_t{64} << 30},
    {"limits", "outbound_bytes_hold", &Config::outbound_bytes_hold, 256 << 10, int64_t{32} << 30},
    {"limits", "conn_pending_max", &Config::conn_pending_max, 16, 100'000},
    {"limits", "room_cache_messages_max", &Config::room_cache_messages_max, 100, 100'000},
    {"limits", "session_ttl_ms", &Config::session_ttl_ms, minute, 10 * year},
    {"limits", "invitation_ttl_ms", &Config::invitation_ttl_ms, second, year},
    {"limits", "writer_min_bytes", &DriverOptions::write_off_thread_min, 0, 1 << 30},
    {"limits", "write_coalesce_us", &DriverOptions::write_coalesce_us, 0, 100'000},
    {"limits", "commit_coalesce_us", &Config::commit_coalesce_us, 0, 100'000},
    {"hashing", "threads", &DriverOptions::hash_threads, 1, 64},
    {"hashing", "queue_max", &DriverOptions::hash_queue_max, 1, 100'000},
};

// "FILE:LINE:COL: " for a node of the file.
std::string where(const toml::node& n) {
    const toml::source_region& src = n.source();
    std::string out = src.path ? *src.path : std::string("config");
    return out + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) +
           ": ";
}

std::optional<std::string> read_int_key(const toml::table& root, const IntKey& k, Settings& s) {
    const toml::node* n = root.at_path(std::string(k.table) + "." + std::string(k.key)).node();
    if (!n) return std::nullopt;
    auto v = n->value_exact<int64_t>();
    if (!v || *v < k.min || *v > k.max)
        return where(*n) + std::string(k.table) + "." + std::string(k.key) +
               " must be an integer from " + std::to_string(k.min) + " to " + std::to_string(k.max);
    std::visit(
        [&](auto member) {
            if constexpr (std::is_member_object_pointer_v<decltype(member)>) {
                using Owner = std::conditional_t<
                    std::is_same_v<decltype(member), int DriverOptions::*> ||
                        std::is_same_v<decltype(member), size_t DriverOptions::*>,
                    DriverOptions, Config>;
                Owner& o = [&]() -> Owner& {
                    if constexpr (std::is_same_v<Owner, Config>)
                        return s.core;
                    else
                        return s.driver;
                }();
                o.*member = static_cast<std::remove_reference_t<decltype(o.*member)>>(*v);
            }
        },
        k.target);
    return std::nullopt;
}

std::optional<std::string> check_keys(const toml::table& t, const std::string& table,
                                      const std::set<std::string>& known) {
    for (const auto& [k, v] : t)
        if (!known.contains(std::string(k.str())))
            return where(v) + "unknown key '" + std::string(k.str()) + "' in [" + table + "]";
    return std::nullopt;
}

// The keys a table may hold: its integer keys from int_keys plus `others`.
std::set<std::string> known_keys(std::string_view table, std::set<std::string> others) {
    for (const IntKey& k : int_keys)
        if (k.table == table) others.insert(std::string(k.key));
    return others;
}

// Rules between keys, after every key is in range: why, and the keys involved (the first the
// file sets gives the place), or nullopt.
struct BadRelation {
    std::vector<std::string> keys;
    std::string message;
};
std::optional<BadRelation> check_relations(const Config& c) {
    using Bad = BadRelation;
    if (!(c.threat_medium < c.threat_high && c.threat_high < c.threat_critical))
        return Bad{{"threat.medium", "threat.high", "threat.critical"}, "threat levels must satisfy medium < high < critical"};
    if (c.text_max_bytes + 512 > c.max_frame_bytes)
        return Bad{{"limits.max_frame_bytes", "limits.text_max_bytes"},
                   "limits.max_frame_bytes must exceed text_max_bytes by 512"};
    if (c.room_cache_messages_max < c.history_page_max)
        return Bad{{"limits.room_cache_messages_max"},
                   "limits.room_cache_messages_max must be at least " +
                       std::to_string(c.history_page_max)};
    if (c.outbound_bytes_guest_max > c.outbound_bytes_max ||
        c.outbound_bytes_max > c.outbound_bytes_total_max)
        return Bad{{"limits.outbound_bytes_guest_max", "limits.outbound_bytes_max",
                    "limits.outbound_bytes_total_max"},
                   "limits must satisfy outbound_bytes_guest_max <= outbound_bytes_max <= "
                   "outbound_bytes_total_max"};
    if (c.alert_p99_warning_ms > c.alert_p99_critical_ms)
        return Bad{{"alerts.p99_warning_ms", "alerts.p99_critical_ms"},
                   "alerts.p99_warning_ms must not exceed alerts.p99_critical_ms"};
    return std::nullopt;
}

// [security]'s lists: the allowlist and the block ladder.
std::optional<std::string> load_security_lists(const toml::table& sec, Config& c) {
    if (auto* list = sec["allowlist"].as_array()) {
        for (const auto& e : *list) {
            auto cidr = e.value<std::string>();
            Cidrs probe;
            if (!cidr || !probe.add(*cidr))
                return where(e) +
                       "security.allowlist must be a list of CIDRs like \"10.0.0.0/8\" or "
                       "\"::1/128\"";
            c.allowlist.push_back(*cidr);
        }
    }
    if (auto* ladder = sec["block_ladder_ms"].as_array()) {
        c.block_ladder_ms.clear();
        for (const auto& e : *ladder) {
            auto v = e.value_exact<int64_t>();
            if (!v || *v < second || *v > 10 * year)
                return where(e) + "security.block_ladder_ms must list durations from " +
                       std::to_string(second) + " to " + std::to_string(10 * year);
            c.block_ladder_ms.push_back(*v);
        }
        if (c.block_ladder_ms.empty())
            return where(*ladder) + "security.block_ladder_ms must not be empty";
    }
    return std::nullopt;
}

// The tables whose keys are all integers (plus [security]'s lists): every key is known, every
// value in range.
std::optional<std::string> load_int_tables(const toml::table& root, Settings& s) {
    for (std::string_view table :
         {"rate", "connections", "security", "threat", "alerts", "limits", "hashing"}) {
        const toml::table* t = root[table].as_table();
        if (!t) continue;
        std::set<std::string> lists;
        if (table == "security") lists = {"allowlist", "block_ladder_ms"};
        if (auto bad = check_keys(*t, std::string(table), known_keys(table, lists))) return bad;
    }
    for (const IntKey& k : int_keys)
        if (auto bad = read_int_key(root, k, s)) return bad;
    if (const toml::table* sec = root["security"].as_table())
        if (auto bad = load_security_lists(*sec, s.core)) return bad;
    auto bad = check_relations(s.core);
    if (!bad) return std::nullopt;
    for (const std::string& key : bad->keys)
        if (const toml::node* n = root.at_path(key).node()) return where(*n) + bad->message;
    return bad->message;
}

// The string at table.key, with its node for error messages; absent keys give nullptr.
std::pair<const toml::node*, std::optional<std::string>> string_key(const toml::table& root,
                                                                    std::string_view path) {
    const toml::node* n = root.at_path(path).node();
    if (!n) return {nullptr, std::nullopt};
    return {n, n->value<std::string>()};
}

// A key that must be a string: nullopt when absent, else its value or why it is refused.
std::optional<std::string> bad_string(const toml::table& root, std::string_view path,
                                      const char* rule) {
    auto [n, v] = string_key(root, path);
    if (n && !v) return where(*n) + std::string(path) + " must be " + rule;
    return std::nullopt;
}

// A listen address key: "HOST:PORT" turns the listener on, "off" turns it off.
std::optional<std::string> listen_key(const toml::table& root, std::string_view path, bool& on,
                                      std::string& host, uint16_t& port) {
    auto [n, listen] = string_key(root, path);
    if (!listen) return std::nullopt;
    if (*listen == "off")
        on = false;
    else if (parse_host_port(*listen, host, port))
        on = true;
    else
        return where(*n) + std::string(path) + " must be HOST:PORT or \"off\"";
    return std::nullopt;
}

// [tls]: the certificate and key of every TLS listener, and how handshakes go.
std::optional<std::string> load_tls(const toml::table& root, Settings& s) {
    const toml::table* t = root["tls"].as_table();
    if (!t) return std::nullopt;
    if (auto bad = check_keys(*t, "tls",
                              {"cert_file", "key_file", "handshake_timeout_ms",
                               "client_certificates", "min_version"}))
        return bad;
    for (const char* path : {"tls.cert_file", "tls.key_file", "tls.min_version"})
        if (auto bad = bad_string(root, path, "a string")) return bad;
    TlsOptions& o = s.driver.tls;
    if (auto [n, v] = string_key(root, "tls.cert_file"); v) o.cert_file = *v;
    if (auto [n, v] = string_key(root, "tls.key_file"); v) o.key_file = *v;
    if (auto [n, v] = string_key(root, "tls.min_version"); v) {
        if (*v != "1.2" && *v != "1.3") return where(*n) + "tls.min_version must be \"1.2\" or \"1.3\"";
        o.min_version = *v;
    }
    if (const toml::node* n = t->get("handshake_timeout_ms")) {
        auto v = n->value_exact<int64_t>();
        if (!v || *v < 100 || *v > 600'000)
            return where(*n) + "tls.handshake_timeout_ms must be an integer from 100 to 600000";
        o.handshake_timeout_ms = *v;
    }
    if (const toml::node* n = t->get("client_certificates")) {
        if (!n->is_boolean()) return where(*n) + "tls.client_certificates must be true or false";
        o.client_certificates = *n->value<bool>();
    }
    return std::nullopt;
}

std::optional<std::string> load_irc(const toml::table& root, Settings& s) {
    if (auto* irc = root["irc"].as_table())
        if (auto bad = check_keys(*irc, "irc",
                                  {"listen", "tls_listen", "server_name", "guests",
                                   "ping_interval_ms", "ping_timeout_ms", "flood_bytes_max",
                                   "sts_duration_s", "sts_port"}))
            return bad;
    for (const char* path : {"irc.listen", "irc.tls_listen", "irc.server_name"})
        if (auto bad = bad_string(root, path, "a string")) return bad;
    if (auto bad = listen_key(root, "irc.listen", s.driver.irc_enabled, s.driver.irc_host,
                              s.driver.irc_port))
        return bad;
    if (auto bad = listen_key(root, "irc.tls_listen", s.driver.irc_tls_enabled,
                              s.driver.irc_tls_host, s.driver.irc_tls_port))
        return bad;
    if (const toml::node* n = root.at_path("irc.sts_duration_s").node()) {
        auto v = n->value_exact<int64_t>();
        if (!v || *v < 0 || *v > 10 * 365 * 86'400)
            return where(*n) + "irc.sts_duration_s must be seconds from 0 (no policy) to 10 years";
        s.core.irc_sts_duration_s = *v;
    }
    if (const toml::node* n = root.at_path("irc.sts_port").node()) {
        auto v = n->value_exact<int64_t>();
        if (!v || *v < 0 || *v > 65'535)
            return where(*n) + "irc.sts_port must be a port from 1 to 65535 (0: irc.tls_listen's)";
        s.core.irc_sts_port = static_cast<uint16_t>(*v);
    }
    if (auto [n, name] = string_key(root, "irc.server_name"); name) {
        // It is the source of server lines: a word with a dot, which no username can be.
        bool ok = name->find('.') != std::string::npos && name->size() <= ShortName::max &&
                  std::all_of(name->begin(), name->end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
                  });
        if (!ok)
            return where(*n) +
                   "irc.server_name must be a host name with a dot (letters, digits, '.', '-')";
        s.core.irc_server_name = ShortName(*name);
    }
    if (const toml::node* n = root.at_path("irc.guests").node()) {
        std::optional<bool> on = n->value<bool>();
        if (!on || !n->is_boolean()) return where(*n) + "irc.guests must be true or false";
        s.core.irc_guests = *on;
    }
    return std::nullopt;
}

std::optional<std::string> load_admin_and_auth(const toml::table& root, Settings& s) {
    if (auto* admin = root["admin"].as_table())
        if (auto bad = check_keys(*admin, "admin", {"token", "listen", "allowed_hosts", "tls"}))
            return bad;
    if (const toml::node* n = root.at_path("admin.tls").node()) {
        if (!n->is_boolean()) return where(*n) + "admin.tls must be true or false";
        s.driver.admin.tls = *n->value<bool>();
    }
    if (auto* auth = root["auth"].as_table())
        if (auto bad = check_keys(*auth, "auth", {"admins", "registration"})) return bad;
    for (const char* path : {"admin.token", "admin.listen", "auth.registration"})
        if (auto bad = bad_string(root, path, "a string")) return bad;
    if (auto [n, token] = string_key(root, "admin.token"); token) s.driver.admin.token = *token;
    if (auto [n, listen] = string_key(root, "admin.listen"); listen) {
        if (*listen == "off")
            s.driver.admin_enabled = false;
        else if (!parse_host_port(*listen, s.driver.admin.host, s.driver.admin.port))
            return where(*n) + "admin.listen must be HOST:PORT or \"off\"";
    }
    if (auto [n, reg] = string_key(root, "auth.registration"); reg) {
        if (*reg != "open" && *reg != "closed")
            return where(*n) + "auth.registration must be \"open\" or \"closed\"";
        s.core.registration_open = *reg == "open";
    }
    if (auto* hosts = root.at_path("admin.allowed_hosts").as_array()) {
        for (const auto& h : *hosts) {
            auto name = h.value<std::string>();
            if (!name || name->empty())
                return where(h) + "admin.allowed_hosts must be a list of host names";
            s.driver.admin.allowed_hosts.push_back(*name);
        }
    }
    if (auto* admins = root.at_path("auth.admins").as_array()) {
        for (const auto& a : *admins) {
            auto name = a.value<std::string>();
            if (!name) return where(a) + "auth.admins must be a list of usernames";
            s.core.admin_usernames.push_back(*name);
        }
    }
    return std::nullopt;
}

std::optional<std::string> load_server_and_storage(const toml::table& root, Settings& s) {
    if (auto* server = root["server"].as_table())
        if (auto bad = check_keys(*server, "server",
                                  {"listen", "tls_listen", "data_dir", "log_level", "log_format",
                                   "log_file", "log_lines_per_second", "log_burst"}))
            return bad;
    if (auto* storage = root["storage"].as_table())
        if (auto bad = check_keys(*storage, "storage", {"synchronous", "backup_dir"})) return bad;
    for (auto [path, out] : {std::pair{"server.log_lines_per_second", &s.log_lines_per_second},
                             std::pair{"server.log_burst", &s.log_burst}}) {
        const toml::node* n = root.at_path(path).node();
        if (!n) continue;
        auto v = n->value<double>();
        if (!v || *v < 1 || *v > 1e9)
            return where(*n) + std::string(path) + " must be a number from 1 to 1e9";
        *out = *v;
    }
    for (const char* path : {"server.listen", "server.tls_listen", "server.data_dir",
                             "server.log_level",
                             "server.log_format", "server.log_file", "storage.synchronous",
                             "storage.backup_dir"})
        if (auto bad = bad_string(root, path, "a string")) return bad;
    if (auto [n, fmt] = string_key(root, "server.log_format"); fmt) {
        if (*fmt != "text" && *fmt != "json")
            return where(*n) + "server.log_format must be text or json";
        s.log_format = *fmt;
    }
    if (auto [n, listen] = string_key(root, "server.listen"); listen)
        if (!parse_host_port(*listen, s.driver.listen_host, s.driver.listen_port))
            return where(*n) + "server.listen must be HOST:PORT";
    if (auto bad = listen_key(root, "server.tls_listen", s.driver.tls_enabled, s.driver.tls_host,
                              s.driver.tls_port))
        return bad;
    if (auto [n, dir] = string_key(root, "server.data_dir"); dir) s.data_dir = *dir;
    if (auto [n, file] = string_key(root, "server.log_file"); file) s.log_file = *file;
    if (auto [n, dir] = string_key(root, "storage.backup_dir"); dir) s.backup_dir = *dir;
    if (auto [n, lvl] = string_key(root, "server.log_level"); lvl) s.log_level = *lvl;
    if (auto [n, sync] = string_key(root, "storage.synchronous"); sync) {
        if (*sync != "normal" && *sync != "full")
            return where(*n) + "storage.synchronous must be \"normal\" or \"full\"";
        s.synchronous = *sync == "full" ? Synchronous::full : Synchronous::normal;
    }
    return std::nullopt;
}

// [retention]: days (0: for ever), batch_max, and [retention.rooms] NAME = days.
std::optional<std::string> load_retention(const toml::table& root, Settings& s) {
    const toml::table* t = root["retention"].as_table();
    if (!t) return std::nullopt;
    if (auto bad = check_keys(*t, "retention", {"days", "rooms", "batch_max"})) return bad;
    constexpr int64_t days_max = 36'600;
    auto days = [&](const toml::node& n) -> std::optional<int64_t> {
        auto v = n.value_exact<int64_t>();
        if (!v || *v < 0 || *v > days_max) return std::nullopt;
        return *v * day;
    };
    if (const toml::node* n = t->get("days")) {
        auto ms = days(*n);
        if (!ms)
            return where(*n) + "retention.days must be an integer from 0 (keep for ever) to " +
                   std::to_string(days_max);
        s.core.retention_ms = *ms;
    }
    if (const toml::node* n = t->get("batch_max")) {
        auto v = n->value_exact<int64_t>();
        if (!v || *v < 1 || *v > 100'000)
            return where(*n) + "retention.batch_max must be an integer from 1 to 100000";
        s.core.retention_batch_max = static_cast<uint32_t>(*v);
    }
    if (const toml::node* n = t->get("rooms")) {
        const toml::table* rooms = n->as_table();
        if (!rooms)
            return where(*n) + "retention.rooms must be a table of room names and days";
        for (const auto& [name, v] : *rooms) {
            auto ms = days(v);
            if (!ms)
                return where(v) + "retention.rooms." + std::string(name.str()) +
                       " must be an integer from 0 (keep for ever) to " + std::to_string(days_max);
            s.core.room_retention_ms.emplace_back(std::string(name.str()), *ms);
        }
    }
    return std::nullopt;
}

}  // namespace

namespace {

int64_t int_value(const IntKey& k, const Settings& s) {
    return std::visit(
        [&](auto member) -> int64_t {
            using M = decltype(member);
            if constexpr (std::is_same_v<M, int DriverOptions::*> ||
                          std::is_same_v<M, size_t DriverOptions::*>)
                return static_cast<int64_t>(s.driver.*member);
            else
                return static_cast<int64_t>(s.core.*member);
        },
        k.target);
}

toml::table& table_of(toml::table& root, std::string_view name) {
    if (!root.contains(name)) root.insert(name, toml::table{});
    return *root[name].as_table();
}

template <typename T>
toml::array array_of(const std::vector<T>& values) {
    toml::array a;
    for (const T& v : values) a.push_back(v);
    return a;
}

std::string host_port(const std::string& host, uint16_t port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

std::string describe_settings(const Settings& s) {
    toml::table root;
    for (const IntKey& k : int_keys) table_of(root, k.table).insert(k.key, int_value(k, s));
    toml::table& server = table_of(root, "server");
    server.insert("listen", host_port(s.driver.listen_host, s.driver.listen_port));
    server.insert("tls_listen", s.driver.tls_enabled
                                    ? host_port(s.driver.tls_host, s.driver.tls_port)
                                    : std::string("off"));
    server.insert("data_dir", s.data_dir);
    server.insert("log_level", s.log_level);
    server.insert("log_format", s.log_format);
    server.insert("log_file", s.log_file);
    server.insert("log_lines_per_second", s.log_lines_per_second);
    server.insert("log_burst", s.log_burst);
    table_of(root, "storage")
        .insert("synchronous", s.synchronous == Synchronous::full ? "full" : "normal");
    table_of(root, "storage").insert("backup_dir", s.backup_dir);
    toml::table& admin = table_of(root, "admin");
    admin.insert("listen", s.driver.admin_enabled
                               ? host_port(s.driver.admin.host, s.driver.admin.port)
                               : std::string("off"));
    // A configured token is never printed; an empty one means DATA_DIR/admin.token.
    admin.insert("token", s.driver.admin.token.empty() ? "" : "(redacted)");
    admin.insert("allowed_hosts", array_of(s.driver.admin.allowed_hosts));
    admin.insert("tls", s.driver.admin.tls);
    toml::table& tls = table_of(root, "tls");
    tls.insert("cert_file", s.driver.tls.cert_file);
    tls.insert("key_file", s.driver.tls.key_file);
    tls.insert("handshake_timeout_ms", s.driver.tls.handshake_timeout_ms);
    tls.insert("client_certificates", s.driver.tls.client_certificates);
    tls.insert("min_version", s.driver.tls.min_version);
    toml::table& irc = table_of(root, "irc");
    irc.insert("listen", s.driver.irc_enabled ? host_port(s.driver.irc_host, s.driver.irc_port)
                                              : std::string("off"));
    irc.insert("tls_listen", s.driver.irc_tls_enabled
                                 ? host_port(s.driver.irc_tls_host, s.driver.irc_tls_port)
                                 : std::string("off"));
    irc.insert("sts_duration_s", s.core.irc_sts_duration_s);
    irc.insert("sts_port", static_cast<int64_t>(s.core.irc_sts_port));
    irc.insert("server_name", s.core.irc_server_name.str());
    irc.insert("guests", s.core.irc_guests);
    toml::table& auth = table_of(root, "auth");
    auth.insert("admins", array_of(s.core.admin_usernames));
    auth.insert("registration", s.core.registration_open ? "open" : "closed");
    toml::table& security = table_of(root, "security");
    security.insert("allowlist", array_of(s.core.allowlist));
    security.insert("block_ladder_ms", array_of(s.core.block_ladder_ms));
    toml::table& retention = table_of(root, "retention");
    retention.insert("days", s.core.retention_ms / day);
    retention.insert("batch_max", static_cast<int64_t>(s.core.retention_batch_max));
    toml::table rooms;
    for (const auto& [name, ms] : s.core.room_retention_ms) rooms.insert_or_assign(name, ms / day);
    retention.insert("rooms", std::move(rooms));
    std::ostringstream out;
    out << root << "\n";
    return out.str();
}

namespace {

std::optional<std::string> load_settings_table(const toml::table& root, Settings& s) {
    if (auto bad = check_keys(root, "",
                              {"server", "storage", "limits", "hashing", "auth", "rate",
                               "connections", "security", "admin", "alerts", "threat",
                               "retention", "irc", "tls"}))
        return bad;
    if (auto bad = load_retention(root, s)) return bad;
    if (auto bad = load_int_tables(root, s)) return bad;
    if (auto bad = load_admin_and_auth(root, s)) return bad;
    if (auto bad = load_irc(root, s)) return bad;
    if (auto bad = load_tls(root, s)) return bad;
    return load_server_and_storage(root, s);
}

std::string parse_failure(const std::string& source, const toml::parse_error& e) {
    return source + ":" + std::to_string(e.source().begin.line) + ":" +
           std::to_string(e.source().begin.column) + ": " + std::string(e.description());
}

}  // namespace

std::optional<std::string> finish_settings(Settings& s) {
    const DriverOptions& d = s.driver;
    bool tls = d.tls_enabled || d.irc_tls_enabled || (d.admin_enabled && d.admin.tls);
    if (tls && (d.tls.cert_file.empty() || d.tls.key_file.empty()))
        return "a TLS listener (server.tls_listen, irc.tls_listen, admin.tls) needs "
               "tls.cert_file and tls.key_file (or --tls-cert and --tls-key)";
    if (s.core.irc_sts_port == 0 && d.irc_tls_enabled) s.core.irc_sts_port = d.irc_tls_port;
    if (s.core.irc_sts_duration_s > 0 && !d.irc_tls_enabled)
        return "irc.sts_duration_s needs irc.tls_listen: the policy sends clients to it";
    return std::nullopt;
}

std::optional<std::string> load_settings_file(const std::string& path, Settings& s) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return parse_failure(path, e);
    }
    return load_settings_table(root, s);
}

std::optional<std::string> load_settings_text(std::string_view text, const std::string& source,
                                              Settings& s) {
    toml::table root;
    try {
        root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        return parse_failure(source, e);
    }
    return load_settings_table(root, s);
}

}  // namespace warren
